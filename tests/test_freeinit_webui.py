"""FreeInit in the webui (tests/webui_stub, real tiny ldm UNet, real k-diffusion): the sampler runs K + 1 times
on one AnimationRun, the progress bar counts every run, and every exit path leaves the model as it was."""
import numpy as np
import pytest

from lib_animlong.errors import AnimLongError
from webui_stub.harness import frames_of, gif_frames, off_generation, webui  # noqa: F401  (webui: fixture)

ANIMATION = dict(enable=True, motion_module="tiny-v2.safetensors", formats=["GIF"], frames=6, context_length=4,
                 fps=4)


def _count_unet_calls(webui):
    calls = []
    webui.unet.input_blocks[0].register_forward_pre_hook(lambda m, i: calls.append(i[0].shape[0]))
    return calls


def _watch_progress(webui):
    seen = []
    webui.callbacks.on_cfg_denoiser(lambda params: seen.append((params.sampling_step,
                                                                params.total_sampling_steps)))
    return seen


def test_the_sampler_runs_k_plus_1_times_and_the_progress_counts_every_run(webui):
    webui.add_motion_file()
    before = webui.snapshot()
    calls = _count_unet_calls(webui)
    _, plain = webui.txt2img([ANIMATION], steps=4)
    plain_calls = len(calls)
    calls.clear()
    seen = _watch_progress(webui)
    _, refined = webui.txt2img([dict(ANIMATION, freeinit_iterations=2)], steps=4)
    webui.unet.input_blocks[0]._forward_pre_hooks.clear()
    assert webui.errors.reported == []
    assert len(calls) == 3 * plain_calls
    # the webui's sampling_step is the last step whose callback ran (0 before the first): run r adds 4 r
    assert {total for _, total in seen} == {12}
    assert [step for step, _ in seen] == [4 * run + max(0, k - 1) for run in range(3) for k in range(4)]
    history = webui.shared.state.textinfo_history
    assert sum(t.startswith("AnimLong: step 1/4, window 1/") for t in history) >= 3   # each run plans step 1
    assert gif_frames(refined.images[0]) == (6, (64, 64))
    assert not all(np.array_equal(a, b) for a, b in zip(frames_of(refined), frames_of(plain)))
    assert "freeinit_iterations=2" in refined.infotexts[0]
    webui.assert_unchanged(before)


def test_an_interrupt_between_runs_returns_the_first_run_and_a_failure_in_run_2_restores_everything(webui):
    webui.add_motion_file(version="v1")        # a v1 module also patches the UNet's GroupNorms while it runs
    baseline = off_generation(webui)
    before = webui.snapshot()
    calls = _count_unet_calls(webui)
    _, plain = webui.txt2img([ANIMATION], steps=4)
    run_calls = len(calls)
    calls.clear()

    def stop_after_first_run(module, inputs, output):     # after run 1's last UNet call: before run 2
        if len(calls) == run_calls:
            webui.shared.state.interrupted = True
    hook = webui.unet.input_blocks[0].register_forward_hook(stop_after_first_run)
    _, stopped = webui.txt2img([dict(ANIMATION, freeinit_iterations=1)], steps=4)
    hook.remove()
    assert len(calls) == run_calls
    webui.shared.state.interrupted = False
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(stopped), frames_of(plain)))   # run 1 = today
    calls.clear()

    def fail_in_run_2(module, inputs):
        if len(calls) > run_calls + 1:
            raise RuntimeError("CUDA out of memory (simulated)")
    hook = webui.unet.output_blocks[4].register_forward_pre_hook(fail_in_run_2)
    with pytest.raises(RuntimeError, match="out of memory"):
        webui.txt2img([dict(ANIMATION, freeinit_iterations=1)], steps=4)
    hook.remove()
    webui.unet.input_blocks[0]._forward_pre_hooks.clear()
    assert len(calls) == run_calls + 2
    webui.assert_unchanged(before)
    after = off_generation(webui)
    assert all(np.array_equal(a, b) for a, b in zip(after, baseline)) and len(after) == len(baseline)


def test_img2img_refuses_freeinit_naming_the_field(webui):
    from PIL import Image
    webui.add_motion_file()
    with pytest.raises(AnimLongError, match="'freeinit_iterations'.*txt2img only"):
        webui.img2img([dict(ANIMATION, freeinit_iterations=1)], init_images=[Image.new("RGB", (64, 64))],
                      is_api=True)
