"""Bad input through the API: HTTP 500 with a message naming the field (or the file), no file written, and the
model as before (a plain generation byte-identical to the one made before any animation)."""
import pytest

from e2e.harness import animation, b64, output_files


def refused(webui, needle, body=None, img2img=False, **fields):
    before = output_files(webui.outputs)
    if img2img:
        from e2e.harness import png_image
        r = webui.client.img2img([png_image()], body, **fields)
    else:
        r = webui.client.txt2img(body, **fields)
    assert r.status != 200, f"accepted: {body}"
    assert needle in r.error, f"the message does not name {needle!r}: {r.error}"
    assert output_files(webui.outputs) == before
    webui.assert_restored()
    return r.error


OPTIONS = [
    ("frames", "many"), ("frames", 0), ("frames", 5000), ("frames", 2.5),
    ("context_length", 1), ("context_length", "long"),
    ("fps", 0), ("fps", 100),
    ("schedule", "zigzag"), ("closed_loop", "yes"), ("motion_scale", 3.0), ("overlap", -1),
    ("references", 5), ("global_steps", 1.5), ("reference_budget", -3), ("noise", "pink"),
    ("enable", "maybe"), ("return_frames", "sometimes"),
    ("formats", ["AVI"]), ("formats", []), ("formats", 7),
    ("motion_module", 42), ("motion_module", ""),
]


@pytest.mark.parametrize("field,value", OPTIONS, ids=[f"{f}={v!r}" for f, v in OPTIONS])
def test_bad_option_value(webui, field, value):
    refused(webui, f"'{field}'", animation(**{field: value}))


@pytest.mark.parametrize("field", ["frame_count", "keyframes_first", "first_frame_strength"])
def test_unknown_headless_only_and_img2img_only_keys(webui, field):
    refused(webui, f"'{field}'", animation(**{field: 1}))


def test_img2img_bad_last_frame_and_strength(webui):
    refused(webui, "'last_frame'", animation(last_frame="not an image"), img2img=True)
    refused(webui, "'first_frame_strength'", animation(first_frame_strength=2.0), img2img=True)


def test_context_length_beyond_the_modules_table_names_the_context_length(webui):
    """v2's positional table has 32 rows; the message is about the context length, not reference positions."""
    refused(webui, "context_length", animation(frames=48, context_length=40))


@pytest.mark.parametrize("name", ["broken_truncated.safetensors", "broken_truncated.ckpt",
                                  "broken_python_object.ckpt", "broken_not_a_module.safetensors",
                                  "broken_sd15_checkpoint.safetensors", "broken_empty.pth", "missing.safetensors"])
def test_broken_and_unknown_files_are_named(webui, name):
    refused(webui, name, animation(motion_module=name))


@pytest.mark.parametrize("name,kind", [("mm_sdxl_v10_beta.ckpt", "SDXL"), ("hsxl_temporal_layers.safetensors", "SDXL"),
                                       ("v2_lora_ZoomIn.ckpt", "MotionLoRA")])
def test_wrong_family_and_lora_files_are_named_for_what_they_are(webui, name, kind):
    error = refused(webui, name, animation(motion_module=name))
    assert kind in error


@pytest.mark.parametrize("prompt,needle", [("0: a red ball\n20: a blue cube", "frame 20"),
                                           ("0: a red ball\n0: a blue cube", "line 2")])
def test_keyframes_out_of_range_or_repeated_name_the_line(webui, prompt, needle):
    refused(webui, needle, animation(frames=8), prompt=prompt)

