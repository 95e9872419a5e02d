"""The seam between the webui and the window engine (issue 9): every model call is mapped explicitly.

AND prompts (the CFG denoiser's interleaved rows, chunks, skipped uncond, padding), the sampler's own step
for two-stage samplers, interrupt between windows, the img2img last frame through the webui's image path,
output numbering. Through tests/webui_stub, which follows the real v1.10.1 CFG denoiser."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from lib_animlong.errors import AnimLongError
from webui_stub.harness import gif_frames, pixels, webui  # noqa: F401  (webui: fixture)

N = 6
ANIMATION = dict(enable=True, motion_module="tiny-v2.safetensors", formats=["GIF"], frames=N, context_length=4,
                 fps=4)
AND_PROMPT = "a red ball AND a green cone"
LONG_NEGATIVE = " ".join(f"word{i}" for i in range(90))   # two 77-token chunks: uncond longer than cond


def watch_unet_rows(webui):
    """Per UNet call: per row, the frame its latent is (matched against the CFG denoiser's x rows) and the
    prompt word of its context (third token)."""
    calls, current = [], {}

    def on_cfg(params):
        current["x"] = params.x[-N:].flatten(1).double()   # the uncond rows: x itself, one row per frame

    def record(module, inputs):
        x, context = inputs[0].flatten(1).double(), inputs[2]
        frames_x = current["x"]
        cos = (x @ frames_x.T) / (x.norm(dim=1, keepdim=True) * frames_x.norm(dim=1)[None])
        frames = cos.argmax(dim=1).tolist()
        assert torch.allclose(cos.max(dim=1).values, torch.ones(len(frames), dtype=torch.float64), atol=1e-5)
        calls.append((frames, [round(float(v), 4) for v in context[:, 2, 0]]))
    webui.callbacks.on_cfg_denoiser(on_cfg)
    webui.unet.input_blocks[0].register_forward_pre_hook(record)
    return calls


def tracks_of(call):
    """The call's rows split where the prompt changes: (frames, prompt word) per track."""
    frames, words = call
    tracks = []
    for frame, word in zip(frames, words):
        if tracks and tracks[-1][1] == word:
            tracks[-1][0].append(frame)
        else:
            tracks.append(([frame], word))
    return tracks


CASES = {
    "batched": dict(),
    "long negative, not padded": dict(negative_prompt=LONG_NEGATIVE),
    "long negative, padded": dict(negative_prompt=LONG_NEGATIVE, opts=dict(pad_cond_uncond=True)),
    "long negative, padded v0": dict(negative_prompt=LONG_NEGATIVE, opts=dict(pad_cond_uncond_v0=True)),
    "uncond skipped below s_min_uncond": dict(s_min_uncond=100.0),
    "uncond skipped early": dict(opts=dict(skip_early_cond=0.5)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_and_prompts_give_every_window_exactly_its_frames_for_every_part(webui, case):
    webui.add_motion_file()
    settings = dict(CASES[case])
    webui.shared.opts.data.update(settings.pop("opts", {}))
    s_min_uncond = settings.pop("s_min_uncond", 0.0)
    calls = watch_unet_rows(webui)
    words = {w: round(float(webui.sd_model.get_learned_conditioning([f"a {w}"])[0, 2, 0]), 4)
             for w in ("red", "green")}
    p = webui.processing.StableDiffusionProcessingTxt2Img
    original_init = p.__init__

    def with_s_min_uncond(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.s_min_uncond = s_min_uncond
    p.__init__ = with_s_min_uncond
    try:
        _, processed = webui.txt2img([ANIMATION], prompt=AND_PROMPT, **settings)
    finally:
        p.__init__ = original_init
    assert webui.errors.reported == []
    assert gif_frames(processed.images[0]) == (N, (64, 64))
    parts_seen = set()
    for call in calls:
        tracks = tracks_of(call)
        assert all(frames == tracks[0][0] for frames, _ in tracks), (case, call)   # the same frames per track
        assert len(tracks[0][0]) < N or len(tracks) <= 3       # windows of a few frames
        parts_seen.update(word for _, word in tracks)
    assert {words["red"], words["green"]} <= parts_seen


def test_chunks_that_split_windows_are_refused_with_the_setting_to_change(webui):
    webui.add_motion_file()
    webui.shared.opts.data["batch_cond_uncond"] = False   # the webui then sends N rows at a time
    with pytest.raises(AnimLongError, match="Batch cond/uncond"):
        webui.txt2img([ANIMATION], prompt=AND_PROMPT)
    calls = watch_unet_rows(webui)
    webui.txt2img([ANIMATION], prompt="a red ball")      # without AND each chunk is one whole track
    assert calls and all(len(tracks_of(call)) == 1 for call in calls)


def test_and_in_one_keyframe_of_prompt_travel_keeps_the_motion_module_on(webui):
    webui.add_motion_file()
    calls = watch_unet_rows(webui)
    travel = "0: a red ball\n3: a red ball AND a green cone"
    _, processed = webui.txt2img([ANIMATION], prompt=travel)
    assert webui.errors.reported == []
    assert gif_frames(processed.images[0]) == (N, (64, 64))
    assert calls
    for frames, _ in calls:      # part 0, part 1 (frames 0-2 borrowed from part 0), uncond: the same frames
        third = len(frames) // 3
        assert len(frames) == 3 * third and frames[:third] == frames[third:2 * third] == frames[2 * third:]


@pytest.mark.parametrize("sampler", ["Heun", "DPM2", "DPM++ 2S a", "DPM++ SDE"])
def test_both_evaluations_of_a_two_stage_step_use_that_steps_plan(webui, sampler):
    webui.add_motion_file()
    _, processed = webui.txt2img([ANIMATION], sampler_name=sampler)
    assert webui.errors.reported == []
    first_windows = [t.split(",")[0] for t in webui.shared.state.textinfo_history if ", window 1/" in t]
    # k-diffusion: two evaluations per step, one at the last step (its sigma_{i+1} is 0)
    assert first_windows == [f"AnimLong: step {s}/4" for s in (1, 1, 2, 2, 3, 3, 4)]


def test_a_sampler_without_a_sigma_ladder_is_refused_by_name(webui):
    webui.add_motion_file()
    with pytest.raises(AnimLongError, match="no fixed sigma ladder"):
        webui.txt2img([ANIMATION], sampler_name="DPM adaptive")


@pytest.mark.parametrize("how", ["interrupted", "skipped"])
def test_interrupt_stops_between_windows_and_leaves_the_model_as_it_was(webui, how):
    webui.add_motion_file()
    before = webui.snapshot()
    calls = []

    def press(module, inputs):
        calls.append(inputs[0].shape[0])
        if len(calls) == 2:        # the second window of the first step is being computed
            setattr(webui.shared.state, how, True)
    hook = webui.unet.input_blocks[0].register_forward_pre_hook(press)
    try:
        _, processed = webui.txt2img([ANIMATION])
    finally:
        hook.remove()
        webui.shared.state.interrupted = webui.shared.state.skipped = False
    assert len(calls) == 2              # no window after the press (the step has more)
    assert gif_frames(processed.images[0])[0] == N     # the webui returns what it has
    webui.assert_unchanged(before)


def test_the_last_frame_is_encoded_like_the_init_image_resize_mode_device_and_vae_dtype(webui):
    from modules import images
    from modules.sd_samplers_common import images_tensor_to_samples
    webui.add_motion_file()
    rng = np.random.default_rng(1)
    init = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    wide = Image.fromarray(rng.integers(0, 255, (64, 128, 3), dtype=np.uint8))   # 128 x 64: cropped by mode 1
    p, _ = webui.img2img([dict(ANIMATION, last_frame=wide)], init_images=[init], denoising_strength=0.8,
                         resize_mode=1)
    assert webui.errors.reported == []
    cropped = images.resize_image(1, wide, 64, 64)
    pixels_in = torch.from_numpy(np.moveaxis(np.asarray(cropped, dtype=np.float32) / 255, 2, 0))[None]
    expected = images_tensor_to_samples(pixels_in, 0, webui.sd_model)[0]
    assert p.animlong.last_latent.dtype == torch.bfloat16
    assert torch.equal(p.animlong.last_latent, expected)


def test_output_numbers_follow_the_largest_and_never_overwrite(webui, tmp_path):
    from lib_animlong.webui import outputs
    folder = tmp_path / "videos"
    frames = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(3)]
    settings = outputs.OutputSettings()

    def write():
        results, notes = outputs.write_videos(frames, ["info"] * 3, [7, 8, 9], 3, ["GIF"], 4, str(folder), settings)
        assert notes == []
        return results[0][1]["GIF"]

    first, second = write(), write()
    kept = open(second, "rb").read()
    mtime = os.stat(second).st_mtime_ns
    os.remove(first)                       # the user deletes an earlier video, then re-runs with the same seed
    third = write()
    assert third not in (first, second)
    assert os.path.basename(third).startswith("00002-7")
    assert open(second, "rb").read() == kept and os.stat(second).st_mtime_ns == mtime
    (folder / "00003-7-frames").mkdir()    # taken meanwhile (another tab): the next free number is used
    assert os.path.basename(outputs.free_name(str(folder), 7, ["GIF", "PNG"])) == "00004-7"
