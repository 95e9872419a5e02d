"""The AnimLong script driven through the webui's hook order (tests/webui_stub) on a real tiny ldm UNet and
real k-diffusion samplers: results, and the model left exactly as it was on every exit path."""
import pytest
import torch

from webui_stub.harness import webui  # noqa: F401  (fixture)

ANIMATION = dict(enable=True, motion_module="tiny-v2.safetensors", formats=["GIF"], frames=6, context_length=4,
                 fps=4)


def test_a_generation_gives_a_video_of_the_frames_and_leaves_the_model_as_it_was(webui):
    webui.add_motion_file()
    before = webui.snapshot()
    p, processed = webui.txt2img([ANIMATION])
    assert webui.errors.reported == []
    webui.assert_unchanged(before)
    assert p.batch_size == 6 and p.all_seeds == [3 + i for i in range(6)]
    assert isinstance(processed.images[0], str) and processed.images[0].endswith(".gif")
    assert len(processed.images) == 1 + 6
