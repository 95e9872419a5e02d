"""Motion-module files as people download them: recognised, validated, loaded safely, or refused clearly."""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from lib_animlong.errors import AnimLongError
from lib_animlong.motion import formats, synthetic
from lib_animlong.motion.call import MotionCall
from lib_animlong.motion.loader import MotionCache, load_motion_module
from lib_animlong.motion.lora import motion_lora

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH = 32  # SD1.5 topology at 1/10 width: every layout's real key names, small tensors


def write(tmp_path, state, name):
    return synthetic.save(state, str(tmp_path / name))


@pytest.mark.parametrize("version, pe, mid, pooled", [
    ("v1", 24, False, True), ("v2", 32, True, False), ("v3", 32, False, False),
    ("AnimateLCM", 64, True, False), ("LongAnimateDiff", 64, False, False)])
def test_sd15_versions_are_recognised_from_keys(version, pe, mid, pooled):
    state = synthetic.random_state_dict(synthetic.sd15_spec(version, WIDTH))
    found = formats.recognise(state)
    assert (found.family, found.version, found.pe_length, found.has_mid) == ("SD1.5", version, pe, mid)
    assert found.spec.pooled_unet_groupnorm == pooled
    assert found.spec.has_pe_keys == (version != "AnimateLCM")


def test_long_animatediff_128_and_sdxl_beta():
    long = formats.recognise(synthetic.random_state_dict(synthetic.sd15_spec("LongAnimateDiff", WIDTH, 128)))
    assert (long.version, long.pe_length) == ("LongAnimateDiff", 128)
    xl = formats.recognise(synthetic.random_state_dict(synthetic.sdxl_spec(WIDTH)))
    assert (xl.family, xl.version, xl.spec.norm_across_frames) == ("SDXL", "SDXL-beta", True)


def test_full_size_v2_shapes_on_meta():
    with torch.device("meta"):
        state = synthetic.random_state_dict(synthetic.sd15_spec("v2"))
    found = formats.recognise(state)
    assert found.channels == (320, 640, 1280, 1280)
    params = sum(v.numel() for k, v in state.items() if not k.endswith(".pe"))
    assert round(params / 1e6, 1) == 453.2


def test_hotshot_is_recognised_but_not_run(tmp_path):
    state = {f"down_blocks.{i}.temporal_attentions.0.transformer_blocks.0.attention_blocks.0.pos_encoder."
             f"positional_encoding": torch.zeros(1, 24, c) for i, c in enumerate((320, 640, 1280))}
    state.update({f"down_blocks.{i}.temporal_attentions.0.norm.weight": torch.ones(c)
                  for i, c in enumerate((320, 640, 1280))})
    found = formats.recognise(state)
    assert (found.family, found.version, found.pe_length, found.spec) == ("SDXL", "HotShot-XL", 24, None)
    with pytest.raises(AnimLongError, match="HotShot-XL.*cannot run"):
        load_motion_module(write(tmp_path, state, "hsxl.safetensors"))


@pytest.mark.parametrize("wrap", ["state_dict", "module.", "both"])
def test_wrappers_and_prefixes_are_removed(tmp_path, wrap):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH))
    if wrap in ("module.", "both"):
        state = {"module." + k: v for k, v in state.items()}
    if wrap in ("state_dict", "both"):
        state = {"state_dict": state}
    loaded = load_motion_module(write(tmp_path, state, "wrapped.ckpt"))
    assert loaded.recognised.version == "v3"


@pytest.mark.parametrize("name, dtype", [("m.safetensors", torch.float16), ("m.ckpt", torch.float32),
                                         ("m.pth", torch.float16)])
def test_loaded_weights_equal_the_file_and_run(tmp_path, name, dtype):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH), seed=4, dtype=dtype)
    loaded = load_motion_module(write(tmp_path, state, name))
    assert loaded.file_dtype == dtype
    for key, value in loaded.motion.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert loaded.info()["parameters"] == sum(v.numel() for k, v in state.items() if not k.endswith(".pe"))
    module = loaded.motion.float().down_blocks[0].motion_modules[0]
    x = torch.randn(8, WIDTH, 2, 2)
    assert (module(x, MotionCall(frames=4)) - x).abs().max() > 1e-3


def test_animatelcm_without_pe_keys_gets_the_sinusoid(tmp_path):
    state = synthetic.random_state_dict(synthetic.sd15_spec("AnimateLCM", WIDTH))
    loaded = load_motion_module(write(tmp_path, state, "lcm.safetensors"))
    pe = loaded.motion.down_blocks[0].motion_modules[0].temporal_transformer.transformer_blocks[0] \
        .attention_blocks[0].pos_encoder.pe
    assert pe.shape == (1, 64, WIDTH) and not pe.is_meta
    assert torch.allclose(pe[0, 1, 0], torch.sin(torch.tensor(1.0)))


def test_cache_returns_the_same_module_until_the_file_changes(tmp_path):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH)), "c.safetensors")
    cache = MotionCache()
    first = cache.get(path)
    assert cache.get(path) is first
    os.utime(path, ns=(1, 1))
    assert cache.get(path) is not first


def test_pickle_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.ckpt"
    torch.save({"down_blocks.0.x": Payload()}, path, pickle_protocol=2)
    with pytest.raises(AnimLongError, match="Python objects other than tensors.*safetensors"):
        load_motion_module(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("name", ["cut.safetensors", "cut.ckpt"])
def test_truncated_files_are_called_corrupt(tmp_path, name):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH)), name)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(AnimLongError, match="truncated or corrupt.*download it again"):
        load_motion_module(path)


@pytest.mark.parametrize("state, message", [
    ({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2)}, "not a motion module.*Stable Diffusion"),
    ({"weights": torch.zeros(3)}, "not a motion module"),
    ({}, "no tensors"),
])
def test_files_that_are_not_motion_modules(tmp_path, state, message):
    with pytest.raises(AnimLongError, match=message):
        load_motion_module(write(tmp_path, state, "x.ckpt"))


def test_inconsistent_shapes_name_the_first_offending_key(tmp_path):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH))
    key = "up_blocks.1.motion_modules.2.temporal_transformer.transformer_blocks.0.ff.net.2.weight"
    state[key] = torch.zeros(3, 3)
    with pytest.raises(AnimLongError, match=f"key '{key}' has shape \\(3, 3\\)"):
        load_motion_module(write(tmp_path, state, "bad.safetensors"))


def test_missing_and_unknown_keys(tmp_path):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH))
    missing = "down_blocks.1.motion_modules.0.temporal_transformer.proj_out.bias"
    del state[missing]
    with pytest.raises(AnimLongError, match=f"'{missing}' is missing"):
        formats.recognise(state)
    state = synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH))
    state["down_blocks.0.motion_modules.0.temporal_transformer.extra.weight"] = torch.zeros(1)
    with pytest.raises(AnimLongError, match="unexpected key.*extra.weight"):
        formats.recognise(state)
    state = synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH))
    state["something_else"] = torch.zeros(1)
    with pytest.raises(AnimLongError, match="Unknown motion-module layout.*something_else"):
        formats.recognise(state)


def test_missing_file_and_unsupported_extension(tmp_path):
    with pytest.raises(AnimLongError, match="not found"):
        load_motion_module(str(tmp_path / "nope.safetensors"))
    (tmp_path / "m.bin").write_bytes(b"xx")
    with pytest.raises(AnimLongError, match="unsupported file type '.bin'"):
        load_motion_module(str(tmp_path / "m.bin"))


def test_motion_lora_changes_weights_and_restores_them(tmp_path):
    spec = synthetic.sd15_spec("v2", WIDTH)
    loaded = load_motion_module(write(tmp_path, synthetic.random_state_dict(spec), "m.safetensors"))
    lora = synthetic.random_motion_lora(spec)
    with pytest.raises(AnimLongError, match="MotionLoRA, not a motion module"):
        load_motion_module(write(tmp_path, lora, "lora.safetensors"))
    before = {k: v.clone() for k, v in loaded.motion.state_dict().items()}
    name = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1"
    delta = lora[f"{name}.processor.to_v_lora.up.weight"] @ lora[f"{name}.processor.to_v_lora.down.weight"]
    with motion_lora(loaded.motion, lora, strength=0.5) as motion:
        torch.testing.assert_close(motion.state_dict()[f"{name}.to_v.weight"], before[f"{name}.to_v.weight"] + 0.5 * delta)
        assert not torch.equal(motion.state_dict()[f"{name}.to_out.0.weight"], before[f"{name}.to_out.0.weight"])
    for key, value in loaded.motion.state_dict().items():
        assert torch.equal(value, before[key])


def test_motion_lora_for_another_module_is_refused(tmp_path):
    v3 = load_motion_module(write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH)), "v3.ckpt"))
    lora = synthetic.random_motion_lora(synthetic.sd15_spec("v2", WIDTH))
    with pytest.raises(AnimLongError, match="does not fit the motion module.*mid_block"):
        with motion_lora(v3.motion, lora):
            pass
    wide = synthetic.random_motion_lora(synthetic.sd15_spec("v3", 64))
    with pytest.raises(AnimLongError, match="does not fit"):
        with motion_lora(v3.motion, wide):
            pass


def run_inspect(*args):
    return subprocess.run([sys.executable, "-m", "lib_animlong", "inspect", *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_inspect_prints_text_and_json(tmp_path):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v1", WIDTH), dtype=torch.float16),
                 "mm_sd_v15.safetensors")
    text = run_inspect(path)
    assert text.returncode == 0 and "SD1.5" in text.stdout and "24 frames" in text.stdout
    info = json.loads(run_inspect(path, "--json").stdout)
    assert (info["family"], info["version"], info["pe_length"], info["has_mid"], info["dtype"]) == \
        ("SD1.5", "v1", 24, False, "float16")


def test_inspect_refuses_bad_files_with_one_sentence(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    result = run_inspect(str(tmp_path / "junk.safetensors"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: junk.safetensors is truncated or corrupt")
    assert "Traceback" not in result.stderr
