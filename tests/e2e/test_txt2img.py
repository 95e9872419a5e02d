"""txt2img animations through /sdapi/v1/txt2img of the real webui: the returned files decoded (format, frame
count, size), the files on disk, the infotext, and after each a plain generation byte-identical to the one
made before any animation (model, sampler and schedule restored)."""
import datetime
import os

import numpy as np
import pytest

from e2e.harness import V2, animation, assert_video, decode, frames_of

SEED = 1234


def ok(response):
    assert response.status == 200, response.error
    return response


def infotext(response) -> str:
    return response.info["infotexts"][0]


def test_every_format_with_return_frames(webui):
    r = ok(webui.client.txt2img(animation(formats=["GIF", "MP4", "WEBP", "PNG"], return_frames=True), seed=SEED))
    gif, mp4, webp, *frames = r.images
    assert_video(gif, "GIF", 8)
    assert_video(mp4, "MP4", 8)
    assert_video(webp, "WEBP", 8)
    assert len(frames) == 8                      # PNG frames are saved, not sent; return_frames sends them
    for i, frame in enumerate(frames):
        decoded = assert_video(frame, "PNG", 1)
        assert f"Seed: {SEED + i}," in decoded.comment     # frame i uses seed + i
        assert "AnimLong: " in decoded.comment
    folder = os.path.join(webui.outputs, "txt2img-images", "AnimLong", datetime.date.today().isoformat())
    saved = sorted(os.listdir(folder))
    stems = [name[:-4] for name in saved
             if name.endswith(".gif") and open(os.path.join(folder, name), "rb").read() == gif]
    assert len(stems) == 1, saved
    stem = stems[0]
    assert stem.endswith(f"-{SEED}")
    for ext, data in ((".gif", gif), (".mp4", mp4), (".webp", webp)):
        with open(os.path.join(folder, stem + ext), "rb") as f:
            assert f.read() == data
    assert len([n for n in os.listdir(os.path.join(folder, stem + "-frames")) if n.endswith(".png")]) == 8
    assert "AnimLong: " in decode(gif).comment   # the parameters travel with the GIF
    webui.assert_restored()


def test_64_frames_with_a_v2_module(webui):
    r = ok(webui.client.txt2img(animation(frames=64, context_length=8)))
    assert_video(r.images[0], "GIF", 64)
    assert "frames=64" in infotext(r) and "context_length=8" in infotext(r)
    webui.assert_restored()


def test_a_v1_module_with_default_options(webui):
    """Everything but the module and the length left at its default: the options fit the v1 table (24)."""
    r = ok(webui.client.txt2img({"enable": True, "motion_module": "mm_sd_v15.ckpt", "frames": 24,
                                 "formats": ["GIF"]}))
    assert_video(r.images[0], "GIF", 24)
    assert "module=mm_sd_v15.ckpt" in infotext(r)
    webui.assert_restored()


def test_long_animatediff_at_context_64(webui):
    r = ok(webui.client.txt2img(animation(motion_module="lt_long_mm_64_frames.safetensors", frames=64,
                                          context_length=64)))
    assert_video(r.images[0], "GIF", 64)
    assert "context_length=64" in infotext(r)
    webui.assert_restored()


def test_closed_loop(webui):
    r = ok(webui.client.txt2img(animation(frames=10, closed_loop=True, formats=["WEBP"])))
    assert_video(r.images[0], "WEBP", 10)
    assert "closed_loop=true" in infotext(r)
    webui.assert_restored()


LONG = ("a red ball resting on a wooden table beside an open window, soft morning light on the floor, "
        "a small green plant in a clay pot, an old book with a leather cover, a white cup of tea, a pair of "
        "round glasses, a folded newspaper, a brass lamp, striped curtains moving in the wind, a cat asleep "
        "on a chair, a painting of the sea on the wall, dust floating in the light, a quiet afternoon")
TRAVEL = ("masterpiece,\n"
          "0: a red ball, (shiny:1.3)\n"
          "4: a [red:blue:0.5] cube AND a red ball :0.8\n"
          f"7: {LONG}\n"
          ", high detail")
NEGATIVE_LONG = ("blurry, lowres, jpeg artifacts, watermark, text, signature, cropped, out of frame, worst quality, "
                 "low quality, duplicate, deformed, extra limbs, bad anatomy, bad proportions, disfigured, "
                 "gross proportions, malformed limbs, missing arms, missing legs, fused fingers, long neck")


def test_prompt_travel_with_three_keyframes_long_prompts_weights_editing_and_AND(webui):
    keyframe_prompts = ["masterpiece, a red ball, (shiny:1.3), high detail",
                        "masterpiece, a [red:blue:0.5] cube AND a red ball :0.8, high detail",
                        f"masterpiece, {LONG}, high detail"]
    for prompt in keyframe_prompts:   # random weights give NaNs on some prompts: these work without us
        assert webui.client.txt2img(prompt=prompt, negative_prompt=NEGATIVE_LONG).status == 200, \
            f"the plain generation of {prompt!r} fails with this checkpoint: choose another prompt"
    r = ok(webui.client.txt2img(animation(return_frames=True), prompt=TRAVEL, negative_prompt=NEGATIVE_LONG,
                                steps=2))
    assert_video(r.images[0], "GIF", 8)
    frames = r.images[1:]
    assert len(frames) == 8
    assert TRAVEL.splitlines()[1] in decode(frames[3]).comment   # the infotext keeps the travel prompt
    pixels = np.stack([frames_of(f)[0] for f in frames]).astype(int)
    assert np.isfinite(pixels).all() and pixels.std() > 0
    webui.assert_restored()


def test_AND_parts_see_the_frames_of_their_window(webui):
    """Two AND parts of half weight each are, by the webui's composable-diffusion formula, the prompt itself:
    if any window got rows of other frames the frames would differ."""
    options = animation(frames=6, context_length=4, return_frames=True)
    single = ok(webui.client.txt2img(options, prompt="a red ball"))
    halves = ok(webui.client.txt2img(options, prompt="a red ball :0.5 AND a red ball :0.5"))
    a = np.stack([frames_of(f)[0] for f in single.images[1:]]).astype(int)
    b = np.stack([frames_of(f)[0] for f in halves.images[1:]]).astype(int)
    assert a.shape == b.shape == (6, 64, 64, 3)
    assert np.abs(a - b).mean() < 1.0, np.abs(a - b).mean(axis=(1, 2, 3))
    webui.assert_restored()


def test_hires_fix_runs_the_window_engine_on_both_passes(webui):
    r = ok(webui.client.txt2img(animation(formats=["GIF", "MP4"]), enable_hr=True, hr_scale=2,
                                hr_upscaler="Latent", hr_second_pass_steps=1, denoising_strength=0.5))
    assert_video(r.images[0], "GIF", 8, (128, 128))
    assert_video(r.images[1], "MP4", 8, (128, 128))
    assert "Hires upscale: 2" in infotext(r)
    webui.assert_restored()


def test_batch_count_two_makes_two_videos(webui):
    r = ok(webui.client.txt2img(animation(frames=6), n_iter=2, seed=SEED))
    assert len(r.images) == 2
    first, second = r.images
    assert_video(first, "GIF", 6)
    assert_video(second, "GIF", 6)
    assert first != second
    assert r.info["all_seeds"][:12] == list(range(SEED, SEED + 12))   # video 2 continues the seeds
    webui.assert_restored()


@pytest.mark.parametrize("sampler,extra", [("Euler a", {}), ("DPM++ 2M", {"scheduler": "Karras"}), ("Heun", {}),
                                           ("DPM++ SDE", {}), ("LCM", {})])
def test_supported_samplers(webui, sampler, extra):
    module = "AnimateLCM_sd15_t2v.ckpt" if sampler == "LCM" else V2
    r = ok(webui.client.txt2img(animation(motion_module=module), sampler_name=sampler, steps=2, **extra))
    assert_video(r.images[0], "GIF", 8)
    assert f"Sampler: {sampler}" in infotext(r)
    webui.assert_restored()


@pytest.mark.parametrize("sampler", ["DDIM", "PLMS", "UniPC"])
def test_unsupported_samplers_are_refused_by_name(webui, sampler):
    before = sorted(os.listdir(webui.data_dir))
    r = webui.client.txt2img(animation(), sampler_name=sampler, steps=3)
    assert r.status == 500
    assert f"'{sampler}'" in r.error and "not supported" in r.error, r.error
    assert sorted(os.listdir(webui.data_dir)) == before
    webui.assert_restored()


def test_freeinit_samples_again_and_is_recorded_in_the_infotext(webui):
    """freeinit_iterations 1 (8 frames, 64x64, 2 steps): a second sampling run from FreeInit's re-initialised
    noise gives other frames than one run, the infotext records it, img2img refuses it by name."""
    plain = ok(webui.client.txt2img(animation(), seed=SEED, steps=2))
    r = ok(webui.client.txt2img(animation(freeinit_iterations=1, freeinit_filter="gaussian"), seed=SEED, steps=2))
    assert_video(r.images[0], "GIF", 8)
    assert "freeinit_iterations=1" in infotext(r) and "freeinit_filter=gaussian" in infotext(r)
    assert r.images[0] != plain.images[0]
    webui.assert_restored()
    from e2e.harness import png_image
    refused = webui.client.img2img([png_image()], animation(freeinit_iterations=1))
    assert refused.status != 200 and "'freeinit_iterations'" in refused.error and "txt2img only" in refused.error
    webui.assert_restored()
