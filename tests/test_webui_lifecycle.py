"""The AnimLong script driven through the webui's hook order (tests/webui_stub) on a real tiny ldm UNet and
real k-diffusion samplers: results, and the model left exactly as it was on every exit path."""
import os

import numpy as np
import pytest
import torch

from lib_animlong.errors import AnimLongError
from webui_stub.harness import gif_frames, interrupt_at, off_generation, pixels, webui  # noqa: F401  (webui: fixture)

ANIMATION = dict(enable=True, motion_module="tiny-v2.safetensors", formats=["GIF"], frames=6, context_length=4,
                 fps=4)


def test_a_generation_makes_one_video_of_the_batch_and_leaves_the_model_as_it_was(webui):
    webui.add_motion_file()
    baseline = off_generation(webui)
    samples = webui.outdir / "txt2img-images"
    saved_before = sorted(samples.iterdir())
    before = webui.snapshot()
    p, processed = webui.txt2img([ANIMATION])
    assert webui.errors.reported == []
    webui.assert_unchanged(before)
    assert sorted(samples.iterdir()) == saved_before + [samples / "AnimLong"]   # no per-frame images, no grid
    assert processed.index_of_first_image == 0
    assert p.batch_size == 6 and p.all_seeds == [3 + i for i in range(6)]
    video = processed.images[0]
    assert isinstance(video, str) and video.endswith(".gif")
    assert os.path.dirname(video).startswith(str(webui.outdir / "txt2img-images" / "AnimLong"))
    assert gif_frames(video) == (6, (64, 64))
    assert len(pixels(processed.images)) == 6 and len(processed.infotexts) == 7
    assert "AnimLong: frames=6" not in processed.infotexts[0] and "AnimLong: " in processed.infotexts[0]
    assert any(text.startswith("AnimLong: step 1/4, window 1/") for text in webui.shared.state.textinfo_history)
    assert all(np.array_equal(a, b) for a, b in zip(off_generation(webui), baseline))


@pytest.mark.parametrize("how", ["unet-failure", "interrupted", "skipped"])
def test_failure_interrupt_and_skip_leave_the_model_as_it_was(webui, how):
    # a v1 module also patches the UNet's GroupNorms (clip-pooled statistics) while it runs
    webui.add_motion_file(version="v1" if how == "unet-failure" else "v2")
    baseline = off_generation(webui)
    before = webui.snapshot()
    if how == "unet-failure":
        calls = []

        def out_of_memory(module, inputs):
            calls.append(inputs[0].shape[0])
            if len(calls) > 2:
                raise RuntimeError("CUDA out of memory (simulated)")
        hook = webui.unet.output_blocks[4].register_forward_pre_hook(out_of_memory)
        with pytest.raises(RuntimeError, match="out of memory"):
            webui.txt2img([ANIMATION])
        hook.remove()
    else:
        interrupt_at(webui, 1, how)
        _, processed = webui.txt2img([ANIMATION])
        history = webui.shared.state.textinfo_history
        assert any("step 1/4" in t for t in history) and not any("step 4/4" in t for t in history)
        assert gif_frames(processed.images[0])[0] == 6     # what was denoised so far is still returned
        webui.callbacks.clear_callbacks()
        webui.shared.state.interrupted = webui.shared.state.skipped = False
    webui.assert_unchanged(before)
    after = off_generation(webui)
    assert all(np.array_equal(a, b) for a, b in zip(after, baseline)) and len(after) == len(baseline)


def test_batch_count_gives_one_video_per_batch_with_consecutive_seeds(webui):
    webui.add_motion_file()
    p, processed = webui.txt2img([dict(ANIMATION, formats=["GIF", "MP4"])], n_iter=2)
    videos = [image for image in processed.images if isinstance(image, str)]
    assert len(videos) == 2 and all(gif_frames(v) == (6, (64, 64)) for v in videos)
    assert len(pixels(processed.images)) == 12
    assert p.all_seeds == [3 + i for i in range(12)]
    assert all(os.path.isfile(paths["MP4"]) for paths in p.animlong_videos)


@pytest.mark.parametrize("frames, context, schedule", [(1, 4, "anchored-shift"), (3, 4, "anchored-shift"),
                                                       (10, 4, "overlap"), (11, 4, "anchored-shift")])
def test_frame_counts_against_the_window(webui, frames, context, schedule):
    webui.add_motion_file()
    before = webui.snapshot()
    args = dict(ANIMATION, frames=frames, context_length=context, schedule=schedule, overlap=1)
    p, processed = webui.txt2img([args])
    assert webui.errors.reported == []
    webui.assert_unchanged(before)
    assert gif_frames(processed.images[0])[0] == frames
    assert all(np.isfinite(frame).all() for frame in pixels(processed.images))


def test_hires_fix_runs_the_window_engine_on_both_passes(webui):
    webui.add_motion_file()
    before = webui.snapshot()
    sizes = set()
    webui.unet.input_blocks[0].register_forward_pre_hook(
        lambda m, i: sizes.add((i[0].shape[0] <= 4 * 2, i[0].shape[-1])))
    p, processed = webui.txt2img([ANIMATION], enable_hr=True, hr_scale=2.0, hr_second_pass_steps=2,
                                 denoising_strength=0.5)
    webui.unet.input_blocks[0]._forward_pre_hooks.clear()
    assert webui.errors.reported == []
    webui.assert_unchanged(before)
    assert gif_frames(processed.images[0]) == (6, (128, 128))
    assert sizes == {(True, 8), (True, 16)}     # only windows, at both latent sizes
    history = webui.shared.state.textinfo_history
    # the second pass (2 steps at strength 0.5 of a 4-step ladder) plans its own windows: steps 3 and 4
    first_windows = [t.split(",")[0] for t in history if ", window 1/" in t]
    assert first_windows == [f"AnimLong: step {s}/4" for s in (1, 2, 3, 4, 3, 4)]


def test_a_motion_module_for_another_unet_is_refused_by_name_and_nothing_changes(webui):
    webui.add_motion_file("xl.safetensors", sdxl=True)
    before = webui.snapshot()
    with pytest.raises(AnimLongError, match="made for SDXL .* checkpoint's UNet is SD1.5"):
        webui.txt2img([dict(ANIMATION, motion_module="xl.safetensors")])
    webui.assert_unchanged(before)


def test_another_extensions_call_that_cannot_be_mapped_is_refused_not_passed_through(webui):
    webui.add_motion_file()
    before = webui.snapshot()
    seen = []

    def other_extension(params):
        denoiser = params.denoiser.inner_model
        one = dict(c_crossattn=[params.text_uncond[:1]], c_concat=[params.image_cond[:1]])
        try:
            denoiser(params.x[:1], params.sigma[:1], cond=one)    # one frame: no window can be computed
            seen.append(None)
        except AnimLongError as error:
            seen.append(str(error))
    webui.callbacks.on_cfg_denoiser(other_extension)
    _, processed = webui.txt2img([ANIMATION])
    assert seen and all(message and "is missing for cond part 0" in message for message in seen)
    assert gif_frames(processed.images[0]) == (6, (64, 64))     # the generation itself is not disturbed
    webui.assert_unchanged(before)


def _count_injections(monkeypatch):
    """Every entry into and exit from the motion modules' injection the adapter makes, in order."""
    from contextlib import contextmanager

    from lib_animlong.webui import generation
    events, inject = [], generation.inject_motion

    @contextmanager
    def counted(*args, **kwargs):
        with inject(*args, **kwargs) as injected:
            events.append("inject")
            try:
                yield injected
            finally:
                events.append("restore")
    monkeypatch.setattr(generation, "inject_motion", counted)
    return events


def _injected_sites(unet):
    from lib_animlong.motion.inject import MotionSite
    return [m for m in unet.modules() if isinstance(m, MotionSite)]


@pytest.mark.parametrize("hires", [False, True])
def test_the_motion_modules_are_injected_once_per_pass_with_one_window_engine(webui, monkeypatch, hires):
    from lib_animlong.webui import generation
    webui.add_motion_file()
    before = webui.snapshot()
    events = _count_injections(monkeypatch)
    engines = []

    class Counted(generation.WindowedDenoiser):
        def __init__(self, *args, **kwargs):
            engines.append(self)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(generation, "WindowedDenoiser", Counted)
    seen = []       # per UNet call: the injections so far, and whether the sites are in the UNet
    hook = webui.unet.input_blocks[0].register_forward_pre_hook(
        lambda m, i: seen.append((events.count("inject"), len(_injected_sites(webui.unet)) > 0)))
    try:
        fields = dict(enable_hr=True, hr_scale=2.0, hr_second_pass_steps=2, denoising_strength=0.5) if hires else {}
        webui.txt2img([ANIMATION], **fields)
    finally:
        hook.remove()
    assert webui.errors.reported == []
    passes = 2 if hires else 1
    calls = [sum(1 for injections, _ in seen if injections == n) for n in range(1, passes + 1)]
    assert calls[0] >= 4 * 2 and calls[-1] >= 2 * 2    # steps x at least 2 windows: many model calls per pass
    assert events == ["inject", "restore"] * passes
    assert len(engines) == passes
    assert all(present for _, present in seen)
    webui.assert_unchanged(before)


def test_an_exception_in_the_sampler_between_model_calls_leaves_the_model_as_it_was(webui, monkeypatch):
    """The sites stay in the UNet between model calls of a pass: an error raised there (here the sampler's
    step callback) must still restore the UNet, its patched GroupNorms (v1) and every function."""
    from modules import sd_samplers
    webui.add_motion_file(version="v1")
    baseline = off_generation(webui)
    before = webui.snapshot()
    events = _count_injections(monkeypatch)
    injected_when_raised = []

    def callback_state(self, d):
        if d["i"] == 1:
            injected_when_raised.append(len(_injected_sites(webui.unet)))
            raise RuntimeError("the step callback failed (simulated)")
    monkeypatch.setattr(sd_samplers.KDiffusionSampler, "callback_state", callback_state)
    with pytest.raises(RuntimeError, match="step callback failed"):
        webui.txt2img([ANIMATION])
    monkeypatch.undo()
    assert injected_when_raised and injected_when_raised[0] > 0      # raised while the modules were in the UNet
    assert events == ["inject", "restore"]
    assert _injected_sites(webui.unet) == []
    webui.assert_unchanged(before)
    after = off_generation(webui)
    assert all(np.array_equal(a, b) for a, b in zip(after, baseline)) and len(after) == len(baseline)
