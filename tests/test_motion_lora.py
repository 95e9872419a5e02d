"""MotionLoRA in the original format: applied with a strength, removed exactly, refused when it does not fit."""
import pytest
import torch

from lib_animlong.errors import AnimLongError
from lib_animlong.motion import synthetic
from lib_animlong.motion.loader import load_motion_module
from lib_animlong.motion.lora import motion_lora, read_motion_lora

WIDTH = 32


def write(tmp_path, state, name):
    return synthetic.save(state, str(tmp_path / name))


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
        weight = motion.state_dict()[f"{name}.to_v.weight"]
        torch.testing.assert_close(weight, before[f"{name}.to_v.weight"] + 0.5 * delta)
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


def test_a_lora_file_is_read_and_applied_to_an_fp16_module(tmp_path):
    spec = synthetic.sd15_spec("v2", WIDTH)
    state = synthetic.random_state_dict(spec, dtype=torch.float16)
    loaded = load_motion_module(write(tmp_path, state, "m.ckpt"))
    lora = read_motion_lora(write(tmp_path, synthetic.wrapped(synthetic.random_motion_lora(spec), module_prefix=True),
                                  "lora.ckpt"))
    name = "mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0"
    delta = lora[f"{name}.processor.to_q_lora.up.weight"] @ lora[f"{name}.processor.to_q_lora.down.weight"]
    with motion_lora(loaded.motion, lora, strength=2.0) as motion:
        weight = motion.state_dict()[f"{name}.to_q.weight"]
        assert weight.dtype == torch.float16
        torch.testing.assert_close(weight.float(), state[f"{name}.to_q.weight"].float() + 2 * delta, atol=2e-3, rtol=0)
    assert all(torch.equal(v, state[k]) for k, v in loaded.motion.state_dict().items())


def test_a_motion_module_is_not_a_lora(tmp_path):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH)), "mm.safetensors")
    with pytest.raises(AnimLongError, match="is not a MotionLoRA"):
        read_motion_lora(path)


def test_a_half_lora_is_refused_and_changes_nothing(tmp_path):
    spec = synthetic.sd15_spec("v2", WIDTH)
    loaded = load_motion_module(write(tmp_path, synthetic.random_state_dict(spec), "m.safetensors"))
    before = {k: v.clone() for k, v in loaded.motion.state_dict().items()}
    lora = synthetic.random_motion_lora(spec)
    dropped = "up_blocks.3.motion_modules.2.temporal_transformer.transformer_blocks.0.attention_blocks.1" \
              ".processor.to_out_lora.up.weight"
    del lora[dropped]
    with pytest.raises(AnimLongError, match="incomplete.*to_out.0.weight.*lacks its up weight"):
        with motion_lora(loaded.motion, lora):
            pass
    assert all(torch.equal(v, before[k]) for k, v in loaded.motion.state_dict().items())


def test_weights_come_back_when_sampling_fails_inside_the_lora(tmp_path):
    spec = synthetic.sd15_spec("v2", WIDTH)
    loaded = load_motion_module(write(tmp_path, synthetic.random_state_dict(spec), "m.safetensors"))
    before = {k: v.clone() for k, v in loaded.motion.state_dict().items()}
    with pytest.raises(KeyboardInterrupt):
        with motion_lora(loaded.motion, synthetic.random_motion_lora(spec), strength=0.8):
            raise KeyboardInterrupt
    assert all(torch.equal(v, before[k]) for k, v in loaded.motion.state_dict().items())
