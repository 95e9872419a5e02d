"""What the AnimLong script gives in the webui (tests/webui_stub, real tiny ldm UNet, real k-diffusion):
API arguments and responses, infotext, prompts (editing, AND, travel), img2img pins, outputs."""
import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from lib_animlong.errors import AnimLongError
from webui_stub.harness import frames_of, gif_frames, off_generation, pixels, webui  # noqa: F401  (webui: fixture)

ANIMATION = dict(enable=True, motion_module="tiny-v2.safetensors", formats=["GIF"], frames=6, context_length=4,
                 fps=4)


def test_the_motion_module_changes_the_frames(webui):
    webui.add_motion_file()
    animated = frames_of(webui.txt2img([ANIMATION])[1])
    still = frames_of(webui.txt2img(None, batch_size=6)[1])
    assert len(animated) == len(still) == 6
    assert not all(np.array_equal(a, b) for a, b in zip(animated, still))


def test_without_motion_module_files_the_error_says_where_to_put_one(webui):
    with pytest.raises(AnimLongError, match="no motion module files found.*motion"):
        webui.txt2img([ANIMATION])


def test_an_unwritable_output_folder_still_returns_the_frames(webui):
    webui.add_motion_file()
    blocker = webui.tmp / "a-file"
    blocker.write_text("not a folder")
    webui.shared.opts.data["animlong_output_folder"] = str(blocker / "videos")
    p, processed = webui.txt2img([ANIMATION])
    assert len(pixels(processed.images)) == 6
    assert "could not save" in processed.comments


@pytest.mark.parametrize("args, field", [
    (dict(ANIMATION, frames="many"), "frames"), (dict(ANIMATION, context_length=1), "context_length"),
    (dict(ANIMATION, schedule="zigzag"), "schedule"), (dict(ANIMATION, colour=3), "colour"),
    (dict(ANIMATION, formats=["AVI"]), "formats"), (dict(ANIMATION, formats=[]), "formats"),
    (dict(ANIMATION, motion_module="missing.ckpt"), "motion_module"), (dict(ANIMATION, enable="yes"), "enable"),
    (dict(ANIMATION, keyframes_first=True), "keyframes_first"),
    (dict(ANIMATION, last_frame="not-an-image"), "last_frame"), (dict(frames=0), "frames")])
def test_invalid_api_args_fail_the_request_naming_the_field(webui, args, field):
    webui.add_motion_file()
    with pytest.raises(AnimLongError, match=f"'{field}'"):
        webui.txt2img([args], is_api=True)


def test_the_api_returns_the_videos_as_base64_and_frames_on_request(webui):
    webui.add_motion_file()
    _, processed = webui.txt2img([dict(ANIMATION, formats=["GIF", "WEBP"], return_frames=True)], is_api=True)
    encoded = [image for image in processed.images if isinstance(image, str)]
    assert len(encoded) == 2
    with Image.open(io.BytesIO(base64.b64decode(encoded[0]))) as gif:
        assert gif.format == "GIF" and gif.n_frames == 6
    assert len(pixels(processed.images)) == 6
    _, without = webui.txt2img([dict(ANIMATION, formats=["MP4"])], is_api=True)
    assert len(without.images) == 1 and base64.b64decode(without.images[0])[4:8] == b"ftyp"


def test_positional_args_in_ui_order_work(webui):
    from lib_animlong.webui.request import control_names, default_value
    webui.add_motion_file()
    values = {name: default_value(name) for name in control_names(False)}
    values.update(ANIMATION)
    _, processed = webui.txt2img([values[name] for name in control_names(False)])
    assert gif_frames(processed.images[0]) == (6, (64, 64))


def test_the_infotext_restores_the_settings(webui):
    from modules.infotext_utils import parse_generation_parameters
    from lib_animlong.webui.request import INFOTEXT_KEY, parse_args, parse_infotext_value
    webui.add_motion_file()
    args = dict(ANIMATION, closed_loop=True, schedule="overlap", overlap=2, motion_scale=1.25, formats=["GIF", "MP4"])
    _, processed = webui.txt2img([args], do_not_save_samples=True)
    params = parse_generation_parameters(processed.infotexts[0])
    restored = parse_args([parse_infotext_value(params[INFOTEXT_KEY])], False)
    assert restored == parse_args([args], False)


def test_prompt_editing_and_and_with_unpadded_cond_uncond_lengths(webui):
    webui.add_motion_file()
    rows, contexts = [], set()

    def record(module, inputs):
        rows.append((inputs[0].shape[0], inputs[2].shape[1]))
        contexts.update(round(float(v), 4) for v in inputs[2][:, 2, 0])   # the third token of every row
    webui.unet.input_blocks[0].register_forward_pre_hook(record)
    long_negative = " ".join(f"word{i}" for i in range(90))   # two 77-token chunks: uncond longer than cond
    _, processed = webui.txt2img([ANIMATION], prompt="[a red ball:a blue cube:0.5] AND a green cone:0.5",
                                 negative_prompt=long_negative)
    assert webui.errors.reported == []
    assert gif_frames(processed.images[0]) == (6, (64, 64))
    assert max(r for r, _ in rows) <= 4 * 2     # a window (4 frames) of the two AND blocks, uncond separately
    assert {t for _, t in rows} == {77, 154}
    word = {w: round(float(webui.sd_model.get_learned_conditioning([f"x {w}"])[0, 2, 0]), 4)
            for w in ("red", "blue", "green", "word1")}
    assert set(word.values()) <= contexts       # before and after the edit, the AND part, the negative prompt


@pytest.mark.parametrize("last_as", ["pil", "base64"])
def test_img2img_pins_the_init_image_as_frame_zero_and_encodes_one_image_at_a_time(webui, last_as):
    webui.add_motion_file()
    rng = np.random.default_rng(0)
    init = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    last = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    before = webui.snapshot()
    sent = last
    if last_as == "base64":
        buffer = io.BytesIO()
        last.save(buffer, format="PNG")
        sent = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    p, processed = webui.img2img([dict(ANIMATION, last_frame=sent, return_frames=True)], init_images=[init],
                                 denoising_strength=0.8, is_api=last_as == "base64")
    assert webui.errors.reported == []
    webui.assert_unchanged(before)
    assert webui.sd_model.latent_calls == [1, 1]      # the init image once, the last frame once
    assert p.init_latent.shape[0] == 6 and p.image_conditioning.shape[0] == 6 and len(p.color_corrections) == 6
    frames = pixels(processed.images)
    expected = []
    from modules.sd_samplers_common import images_tensor_to_samples
    for image in (init, last):
        pixels_in = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None] / 255
        latent = images_tensor_to_samples(pixels_in, 0, webui.sd_model).float()
        decoded = ((webui.sd_model.decode_first_stage(latent) + 1) / 2).clamp(0, 1)[0]
        expected.append((decoded.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    assert np.abs(frames[0].astype(int) - expected[0]).max() <= 1
    assert np.abs(frames[-1].astype(int) - expected[1]).max() <= 1
    assert np.abs(frames[2].astype(int) - expected[0]).max() > 1


def test_prompt_travel_gives_each_frame_its_keyframe_prompt_and_blends_between(webui):
    webui.add_motion_file()
    travel = "best quality\n0: a red ball\n5: a blue cube"
    p, processed = webui.txt2img([ANIMATION], prompt=travel)
    assert webui.errors.reported == []
    assert p.prompts[0] == "best quality, a red ball" and p.prompts[4] == p.prompts[0]
    assert p.prompts[5] == "best quality, a blue cube"
    assert processed.infotexts[0].startswith(travel + "\nNegative prompt:")   # pasting restores the travel
    c = p.c.batch
    ends = [s.end_at_step for s in c[2][0].schedules]
    assert ends == [s.end_at_step for s in c[0][0].schedules]
    middle = c[2][0].schedules[0].cond
    assert not torch.equal(middle, c[0][0].schedules[0].cond) and not torch.equal(middle, c[5][0].schedules[0].cond)


def test_with_enable_off_the_script_changes_nothing(webui):
    webui.add_motion_file()
    baseline = off_generation(webui)
    p, processed = webui.txt2img([dict(ANIMATION, enable=False)], batch_size=2)
    assert p.batch_size == 2 and not hasattr(p, "animlong")
    assert all(np.array_equal(a, b) for a, b in zip(pixels(processed.images), baseline)) and len(baseline) == 3
