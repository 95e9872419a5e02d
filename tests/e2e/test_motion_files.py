"""Every container the original and community motion files come in loads in the real webui (whose own
torch.load replacement is in place) and animates."""
import pytest

from e2e.harness import MOTION, animation, assert_video

CONTAINERS = ["mm_sd_v15_v2.safetensors",      # safetensors, float16
              "mm_sd_v15_v2.ckpt",             # torch.save zip, float32, plain (as the original download)
              "mm_v2_legacy_wrapped.ckpt",     # torch.save before 1.6 (legacy pickle), under state_dict
              "mm_v2_dataparallel.pth",        # .pth zip, under state_dict, keys prefixed with module.
              "mm_sd_v15.ckpt",                # v1, zip, under state_dict
              "v3_sd15_mm.ckpt",               # v3, zip
              "AnimateLCM_sd15_t2v.ckpt"]      # AnimateLCM (no positional table), zip


@pytest.mark.parametrize("name", CONTAINERS)
def test_container_loads_and_animates(webui, name):
    kind = MOTION[name].kind
    r = webui.client.txt2img(animation(motion_module=name, frames=8, context_length=8))
    assert r.status == 200, f"{name} ({kind}, {MOTION[name].container}): {r.error}"
    assert_video(r.images[0], "GIF", 8)
    assert f"module={name}" in r.info["infotexts"][0]
    webui.assert_restored()
