"""Motion-module files as people download them: loaded safely and faithfully, cached, or refused clearly."""
import os

import pytest
import torch

from lib_animlong.errors import AnimLongError
from lib_animlong.motion import formats, synthetic
from lib_animlong.motion.call import MotionCall
from lib_animlong.motion.loader import MotionCache, load_motion_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH = 32


def write(tmp_path, state, name):
    return synthetic.save(state, str(tmp_path / name))


@pytest.mark.parametrize("state_dict, module_prefix", [(True, False), (False, True), (True, True)])
def test_wrappers_and_prefixes_are_removed(tmp_path, state_dict, module_prefix):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH), seed=2)
    loaded = load_motion_module(write(tmp_path, synthetic.wrapped(state, state_dict, module_prefix), "wrapped.ckpt"))
    assert loaded.recognised.version == "v3"
    assert all(torch.equal(v, state[k]) for k, v in loaded.motion.state_dict().items())


@pytest.mark.parametrize("name, dtype", [("m.safetensors", torch.float16), ("m.safetensors", torch.float32),
                                         ("m.ckpt", torch.float32), ("m.pth", torch.float16)])
def test_loaded_weights_equal_the_file_and_run(tmp_path, name, dtype):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH), seed=4, dtype=dtype)
    path = write(tmp_path, state, name)
    loaded = load_motion_module(path)
    assert loaded.file_dtype == dtype
    for key, value in loaded.motion.state_dict().items():
        assert torch.equal(value, state[key]), key
    info = loaded.info()
    assert (info["family"], info["version"], info["pe_length"], info["has_mid"]) == ("SD1.5", "v2", 32, True)
    assert info["dtype"] == str(dtype).replace("torch.", "")
    assert info["parameters"] == sum(v.numel() for k, v in state.items() if not k.endswith(".pe"))
    assert info["file_size"] == os.path.getsize(path)
    module = loaded.motion.float().down_blocks[0].motion_modules[0]
    x = torch.randn(8, WIDTH, 2, 2)
    assert (module(x, MotionCall(frames=4)) - x).abs().max() > 1e-3


def test_dtype_and_device_are_applied(tmp_path):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH), dtype=torch.float16),
                 "m.safetensors")
    loaded = load_motion_module(path, device="cpu", dtype=torch.float32)
    assert loaded.file_dtype == torch.float16
    assert {p.dtype for p in loaded.motion.parameters()} == {torch.float32}
    assert not loaded.motion.training and not any(p.requires_grad for p in loaded.motion.parameters())


def test_sdxl_beta_loads_with_its_cross_frame_norm(tmp_path):
    loaded = load_motion_module(write(tmp_path, synthetic.random_state_dict(synthetic.sdxl_spec(WIDTH)), "xl.ckpt"))
    assert loaded.motion.spec.family == "SDXL"
    assert loaded.motion.down_blocks[2].motion_modules[1].temporal_transformer.norm_across_frames


def test_animatelcm_without_pe_keys_gets_the_sinusoid(tmp_path):
    state = synthetic.random_state_dict(synthetic.sd15_spec("AnimateLCM", WIDTH))
    assert not any("pos_encoder" in k for k in state)
    loaded = load_motion_module(write(tmp_path, state, "lcm.safetensors"))
    pe = loaded.motion.down_blocks[0].motion_modules[0].temporal_transformer.transformer_blocks[0] \
        .attention_blocks[0].pos_encoder.pe
    assert pe.shape == (1, 64, WIDTH) and not pe.is_meta
    assert torch.allclose(pe[0, 1, 0], torch.sin(torch.tensor(1.0)))


def test_our_small_model_file_loads():
    path = os.path.join(ROOT, "models", "sprites-motion.safetensors")
    loaded = load_motion_module(path)
    assert loaded.recognised.family == "custom" and len(loaded.motion.down_blocks) == 2


def test_cache_returns_the_same_module_until_the_file_changes(tmp_path):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH)), "c.safetensors")
    cache = MotionCache()
    first = load_motion_module(path, cache=cache)
    assert load_motion_module(path, cache=cache) is first
    os.utime(path, ns=(1, 1))
    assert cache.get(path) is not first
    assert len(cache.entries) == 1  # capacity 1: full-size modules are large


def test_cache_sees_a_replaced_file(tmp_path):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH)), "c.safetensors")
    cache = MotionCache()
    assert cache.get(path).recognised.version == "v3"
    synthetic.save(synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH)), path)
    assert cache.get(path).recognised.version == "v2"


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
    ({"weights": torch.randn(3, 3)}, "not a motion module"),
    ({}, "no tensors"),
])
def test_files_that_are_not_motion_modules(tmp_path, state, message):
    with pytest.raises(AnimLongError, match=message):
        load_motion_module(write(tmp_path, state, "x.ckpt"))


def test_inconsistent_shapes_name_the_key(tmp_path):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH))
    key = "mid_block.motion_modules.0.temporal_transformer.proj_in.weight"
    state[key] = torch.zeros(4 * WIDTH, 2 * WIDTH)
    with pytest.raises(AnimLongError, match=f"key '{key}' has shape"):
        load_motion_module(write(tmp_path, state, "bad.safetensors"))


def test_unknown_layout_is_refused(tmp_path):
    with pytest.raises(AnimLongError, match="Unknown motion-module layout"):
        load_motion_module(write(tmp_path, {"down_blocks.0.motion_modules.0.weird": torch.zeros(1)}, "u.ckpt"))


def test_hotshot_loads_under_our_names_and_runs(tmp_path):
    state = synthetic.hotshot_state_dict(WIDTH, seed=3, dtype=torch.float16)
    loaded = load_motion_module(write(tmp_path, state, "hsxl_temporal_layers.safetensors"))
    assert (loaded.recognised.version, loaded.motion.spec.pe_length, loaded.file_dtype) == \
        ("HotShot-XL", 24, torch.float16)
    normalised = formats.normalise(state)
    for key, value in loaded.motion.state_dict().items():
        assert torch.equal(value, normalised[key]), key
    module = loaded.motion.float().up_blocks[0].motion_modules[2]
    x = torch.randn(2 * 8, 4 * WIDTH, 2, 2)
    assert (module(x, MotionCall(frames=8)) - x).abs().max() > 1e-3


def test_missing_file_and_unsupported_extension(tmp_path):
    with pytest.raises(AnimLongError, match="not found"):
        load_motion_module(str(tmp_path / "nope.safetensors"))
    (tmp_path / "m.bin").write_bytes(b"xx")
    with pytest.raises(AnimLongError, match="unsupported file type '.bin'"):
        load_motion_module(str(tmp_path / "m.bin"))
