"""Motion-module layouts recognised from keys and shapes alone, and refused with the first offending key."""
import pytest
import torch

from lib_animlong.errors import AnimLongError
from lib_animlong.motion import formats, synthetic

WIDTH = 32  # SD1.5 topology at 1/10 width: every layout's real key names, small tensors


@pytest.mark.parametrize("version, pe, mid, pooled", [
    ("v1", 24, False, True), ("v2", 32, True, False), ("v3", 32, False, False),
    ("AnimateLCM", 64, True, False), ("LongAnimateDiff", 64, False, False)])
def test_sd15_versions_are_recognised_from_keys(version, pe, mid, pooled):
    state = synthetic.random_state_dict(synthetic.sd15_spec(version, WIDTH))
    found = formats.recognise(state)
    assert (found.family, found.version, found.pe_length, found.has_mid) == ("SD1.5", version, pe, mid)
    assert found.spec.pooled_unet_groupnorm == pooled
    assert found.spec.has_pe_keys == (version != "AnimateLCM")
    assert found.channels == (WIDTH, 2 * WIDTH, 4 * WIDTH, 4 * WIDTH)


def test_long_animatediff_128_and_sdxl_beta():
    long = formats.recognise(synthetic.random_state_dict(synthetic.sd15_spec("LongAnimateDiff", WIDTH, 128)))
    assert (long.version, long.pe_length) == ("LongAnimateDiff", 128)
    xl = formats.recognise(synthetic.random_state_dict(synthetic.sdxl_spec(WIDTH)))
    assert (xl.family, xl.version, xl.spec.norm_across_frames, xl.has_mid) == ("SDXL", "SDXL-beta", True, False)
    assert xl.channels == (WIDTH, 2 * WIDTH, 4 * WIDTH)


@pytest.mark.parametrize("make, channels, millions", [
    (lambda: synthetic.sd15_spec("v2"), (320, 640, 1280, 1280), 453.2),
    (lambda: synthetic.sd15_spec("v3"), (320, 640, 1280, 1280), 417.1),
    (lambda: synthetic.sdxl_spec(), (320, 640, 1280), 236.8)])
def test_full_size_shapes_on_meta(make, channels, millions):
    with torch.device("meta"):
        state = synthetic.random_state_dict(make())
    found = formats.recognise(state)
    assert found.channels == channels
    params = sum(v.numel() for k, v in state.items() if not k.endswith(".pe"))
    assert round(params / 1e6, 1) == millions


def test_a_custom_two_level_topology_is_recognised():
    """Our own small model's layout: 2 levels, 1 down and 2 up modules per level, no mid."""
    from lib_animlong.motion.module import MotionSpec
    spec = MotionSpec(family="SD1.5", version="custom", down_channels=(32, 64), down_per_level=1,
                      up_channels=(64, 32), up_per_level=2, mid_channels=None, pe_length=16)
    found = formats.recognise(synthetic.random_state_dict(spec))
    assert (found.family, found.version, found.pe_length, found.channels) == ("custom", "custom", 16, (32, 64))
    assert (found.spec.down_per_level, found.spec.up_per_level, found.spec.up_channels) == (1, 2, (64, 32))


def test_hotshot_naming_is_recognised_and_normalised():
    state = synthetic.hotshot_state_dict(WIDTH)
    assert any(".temporal_attentions." in k for k in state) and not any(".motion_modules." in k for k in state)
    found = formats.recognise(state)
    assert (found.family, found.version, found.pe_length, found.has_mid) == ("SDXL", "HotShot-XL", 24, False)
    assert found.channels == (WIDTH, 2 * WIDTH, 4 * WIDTH)
    # HotShot-XL: module GroupNorm per frame (unlike the SDXL beta), UNet GroupNorms pooled across frames
    assert (found.spec.norm_across_frames, found.spec.pooled_unet_groupnorm) == (False, True)
    normalised = formats.normalise(state)
    assert set(normalised) == set(synthetic.random_state_dict(synthetic.hotshot_spec(WIDTH)))
    key = "up_blocks.2.motion_modules.1.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"
    assert normalised[key] is state[
        "up_blocks.2.temporal_attentions.1.transformer_blocks.0.attention_blocks.0.pos_encoder.positional_encoding"]


def test_a_broken_hotshot_file_names_the_key_as_the_file_does():
    state = synthetic.hotshot_state_dict(WIDTH)
    state["down_blocks.1.temporal_attentions.0.proj_in.weight"] = torch.zeros(3, 3)
    with pytest.raises(AnimLongError, match=r"key 'down_blocks\.1\.temporal_attentions\.0\.proj_in\.weight' has shape"):
        formats.recognise(state)


@pytest.mark.parametrize("state_dict, module_prefix", [(True, False), (False, True), (True, True)])
def test_wrappers_and_prefixes_are_removed(state_dict, module_prefix):
    state = synthetic.wrapped(synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH)), state_dict, module_prefix)
    assert formats.recognise(formats.unwrap(state)).version == "v3"


def test_a_motion_lora_is_not_a_module():
    with pytest.raises(AnimLongError, match="MotionLoRA, not a motion module"):
        formats.recognise(synthetic.random_motion_lora(synthetic.sd15_spec("v2", WIDTH)))


def test_inconsistent_shapes_name_the_first_offending_key():
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH))
    key = "up_blocks.1.motion_modules.2.temporal_transformer.transformer_blocks.0.ff.net.2.weight"
    state[key] = torch.zeros(3, 3)
    with pytest.raises(AnimLongError, match=f"key '{key}' has shape \\(3, 3\\)"):
        formats.recognise(state)


def test_a_projection_of_another_width_is_named():
    state = synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH))
    key = "down_blocks.2.motion_modules.1.temporal_transformer.transformer_blocks.0.attention_blocks.0.to_q.weight"
    state[key] = torch.zeros(2 * WIDTH, 2 * WIDTH)  # level 2 is 4 * WIDTH wide
    with pytest.raises(AnimLongError, match=f"key '{key}' has shape"):
        formats.recognise(state)


def test_positional_tables_of_different_lengths_are_named():
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH))
    key = "up_blocks.3.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe"
    state[key] = torch.zeros(1, 24, WIDTH)
    with pytest.raises(AnimLongError, match=f"key '{key}' has shape \\(1, 24, {WIDTH}\\), expected \\(1, 32, {WIDTH}\\)"):
        formats.recognise(state)


def test_missing_and_unknown_keys():
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


def test_gaps_in_level_or_module_indices_are_an_unknown_layout():
    state = synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH))
    no_first_module = {k: v for k, v in state.items() if not k.startswith("down_blocks.1.motion_modules.0.")}
    with pytest.raises(AnimLongError, match=r"`down_blocks.1` holds modules \[1\], not 0..n-1"):
        formats.recognise(no_first_module)
    no_level = {k: v for k, v in state.items() if not k.startswith("up_blocks.0.")}
    with pytest.raises(AnimLongError, match=r"`up_blocks` levels \[1, 2, 3\] are not 0..n-1"):
        formats.recognise(no_level)


@pytest.mark.parametrize("state, message", [
    ({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2)}, "not a motion module.*Stable Diffusion"),
    ({"weights": torch.zeros(3)}, "not a motion module"),
    ({}, "no tensors"),
])
def test_tensors_that_are_not_motion_modules(state, message):
    with pytest.raises(AnimLongError, match=message):
        formats.recognise(state)
