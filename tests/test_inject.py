import dataclasses

import pytest
import torch

from lib_animlong import kdiffusion
from lib_animlong.errors import AnimLongError
from lib_animlong.motion.call import MotionCall
from lib_animlong.motion.inject import inject_motion, match_sites, training_alphas_cumprod
from lib_animlong.motion.module import MotionModuleSet
from lib_animlong.motion.synthetic import sd15_spec, sdxl_spec
from lib_animlong.smallmodel import config as small_model
from unets import (SDXL_LAYOUT, LatentModel, meta_sd15_unet, meta_unet, randomize_, tiny_motion, tiny_sd15_unet,
                   tiny_sdxl_layout_unet)

FRAMES = 4


def unet_inputs(rows=2 * FRAMES, size=8):
    g = torch.Generator().manual_seed(5)
    return (torch.randn(rows, 4, size, size, generator=g), torch.full((rows,), 400),
            torch.randn(rows, 5, 32, generator=g))


def snapshot(unet, owner=None):
    """Everything injection may touch: module tree (identities), parameters, forwards, schedule."""
    return dict(
        tree=[(name, id(module), type(module)) for name, module in unet.named_modules()],
        params={name: p.detach().clone() for name, p in unet.named_parameters()},
        param_ids={name: id(p) for name, p in unet.named_parameters()},
        instance_attrs={name: sorted(vars(module)) for name, module in unet.named_modules()},
        schedule=None if owner is None else (id(owner.alphas_cumprod), owner.alphas_cumprod.clone()),
    )


def assert_restored(before, after):
    assert before["tree"] == after["tree"]
    assert before["param_ids"] == after["param_ids"]
    assert before["instance_attrs"] == after["instance_attrs"]
    for name, p in before["params"].items():
        assert torch.equal(p, after["params"][name]), name
    if before["schedule"] is not None:
        assert before["schedule"][0] == after["schedule"][0]
        assert torch.equal(before["schedule"][1], after["schedule"][1])


def test_full_size_sd15_sites_are_the_webui_ones():
    unet = meta_sd15_unet()
    with torch.device("meta"):
        motion = MotionModuleSet(sd15_spec("v2"))
    places = [(site.place, site.index) for site, _ in match_sites(unet, motion)]
    down = [f"input_blocks.{i}" for i in (1, 2, 4, 5, 7, 8, 10, 11)]
    assert [p for p, _ in places] == down + ["middle_block"] + [f"output_blocks.{i}" for i in range(12)]
    index = dict(places)
    assert index["middle_block"] == 2  # after the SpatialTransformer, before the second ResBlock
    for i in (2, 5, 8):  # before the Upsample
        block = unet.output_blocks[i]
        assert type(block[index[f"output_blocks.{i}"]]).__name__ == "Upsample"


def test_v3_has_no_mid_site_on_full_size():
    with torch.device("meta"):
        motion = MotionModuleSet(sd15_spec("v3"))
    places = [site.place for site, _ in match_sites(meta_sd15_unet(), motion)]
    assert "middle_block" not in places and len(places) == 20


def test_no_call_is_a_bit_identical_passthrough_and_a_call_adds_motion():
    unet, motion = tiny_sd15_unet(), tiny_motion("v2")
    x, t, c = unet_inputs()
    with torch.no_grad():
        plain = unet(x, t, context=c)
        with inject_motion(unet, motion) as injected:
            passthrough = unet(x, t, context=c)
            odd_batch = unet(x[:3], t[:3], context=c[:3])  # another caller, any batch size
            with injected.slot.use(MotionCall(frames=FRAMES)):
                animated = unet(x, t, context=c)
    assert torch.equal(plain, passthrough)
    assert odd_batch.shape[0] == 3
    assert (animated - plain).abs().max() > 1e-3


@pytest.mark.parametrize("version", ["v2", "v1"])  # v1 also pools the UNet's GroupNorms: per clip only
def test_frames_mix_only_within_a_clip(version):
    unet, motion = tiny_sd15_unet(), tiny_motion(version)
    x, t, c = unet_inputs()
    with torch.no_grad(), inject_motion(unet, motion) as injected, injected.slot.use(MotionCall(frames=FRAMES)):
        both = unet(x, t, context=c)
        first = unet(x[:FRAMES], t[:FRAMES], context=c[:FRAMES])
    torch.testing.assert_close(both[:FRAMES], first, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("version", ["v2", "v1"])  # v1: the pooled UNet GroupNorms meet the rows first
def test_batch_not_a_multiple_of_the_frames_is_a_clear_error(version):
    unet, motion = tiny_sd15_unet(), tiny_motion(version)
    x, t, c = unet_inputs(rows=6)
    with inject_motion(unet, motion) as injected, injected.slot.use(MotionCall(frames=FRAMES)):
        with pytest.raises(AnimLongError, match="6 rows.*4-frame"):
            unet(x, t, context=c)


def test_window_longer_than_the_positional_table_is_refused():
    unet, motion = tiny_sd15_unet(), tiny_motion("v2", pe_length=2)
    x, t, c = unet_inputs()
    with inject_motion(unet, motion) as injected, injected.slot.use(MotionCall(frames=FRAMES)):
        with pytest.raises(AnimLongError, match="positional table.*context length to 2"):
            unet(x, t, context=c)


def test_v1_pools_unet_group_norms_across_the_clip_only_during_a_call():
    unet = tiny_sd15_unet()
    v1 = tiny_motion("v1")
    x, t, c = unet_inputs()
    with torch.no_grad():
        plain = unet(x, t, context=c)
        with inject_motion(unet, v1) as injected:
            assert torch.equal(unet(x, t, context=c), plain)
            assert "forward" in vars(unet.out[0]) and "forward" in vars(unet.input_blocks[1][0].in_layers[0])
            with injected.slot.use(MotionCall(frames=FRAMES)):
                pooled = unet(x, t, context=c)
        v3 = tiny_motion("v3", pe_length=24)  # v1's layout without the pooling
        v3.load_state_dict(v1.state_dict())
        with inject_motion(unet, v3) as injected, injected.slot.use(MotionCall(frames=FRAMES)):
            per_frame = unet(x, t, context=c)
    assert (pooled - per_frame).abs().max() > 1e-4


def test_schedule_is_swapped_while_active_and_the_same_tensor_comes_back():
    unet, motion = tiny_sd15_unet(), tiny_motion("v2")
    owner = LatentModel(unet)
    original = owner.alphas_cumprod
    with inject_motion(unet, motion, schedule_owner=owner):
        linear = torch.cumprod(1 - torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64), 0).float()
        torch.testing.assert_close(owner.alphas_cumprod, linear)
        assert not torch.allclose(original, owner.alphas_cumprod)
    assert owner.alphas_cumprod is original


def test_training_schedules_by_family():
    linear = torch.cumprod(1 - torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64), 0)
    torch.testing.assert_close(training_alphas_cumprod(sd15_spec("v2", 32)), linear, rtol=0, atol=1e-12)
    scaled = torch.cumprod(1 - torch.linspace(0.00085 ** 0.5, 0.020 ** 0.5, 1000, dtype=torch.float64) ** 2, 0)
    torch.testing.assert_close(training_alphas_cumprod(sdxl_spec(32)), scaled, rtol=0, atol=1e-12)
    hotshot = dataclasses.replace(sdxl_spec(32), version="HotShot-XL")
    torch.testing.assert_close(training_alphas_cumprod(hotshot), linear, rtol=0, atol=1e-12)


class InterruptInsideTheUNet:
    """A reference buffer whose first use raises: an interrupt in the middle of a motion module."""

    def extend(self, key, normed, pe, call, store_dtype=None):
        raise KeyboardInterrupt()


@pytest.mark.parametrize("exit_by", ["success", "exception", "keyboard_interrupt", "interrupt_inside_the_unet"])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_exit_path_restores_everything(exit_by, version):
    unet, motion = tiny_sd15_unet(), tiny_motion(version)
    owner = LatentModel(unet)
    before = snapshot(unet, owner)
    x, t, c = unet_inputs()
    errors = {"exception": RuntimeError("boom"), "keyboard_interrupt": KeyboardInterrupt()}
    error = errors.get(exit_by)
    reference = InterruptInsideTheUNet() if exit_by == "interrupt_inside_the_unet" else None
    raised = None
    try:
        with torch.no_grad(), inject_motion(unet, motion, schedule_owner=owner) as injected:
            with injected.slot.use(MotionCall(frames=FRAMES, reference=reference)):
                unet(x, t, context=c)
                if error is not None:
                    raise error
    except (RuntimeError, KeyboardInterrupt) as caught:
        raised = caught
    assert raised is error if exit_by != "interrupt_inside_the_unet" else isinstance(raised, KeyboardInterrupt)
    assert_restored(before, snapshot(unet, owner))
    with torch.no_grad():
        assert torch.equal(unet(x, t, context=c), tiny_sd15_unet()(x, t, context=c))


def test_a_denoiser_built_while_injected_samples_on_the_training_schedule():
    _, external = kdiffusion.load()
    owner = LatentModel(tiny_sd15_unet())
    webui_sigmas = external.CompVisDenoiser(owner).sigmas
    with inject_motion(owner.diffusion_model, tiny_motion("v2"), schedule_owner=owner):
        animated_sigmas = external.CompVisDenoiser(owner).sigmas
    alphas = training_alphas_cumprod(sd15_spec("v2"))
    torch.testing.assert_close(animated_sigmas, (((1 - alphas) / alphas) ** 0.5).float())
    assert torch.equal(external.CompVisDenoiser(owner).sigmas, webui_sigmas)
    assert animated_sigmas[-1] > 25 > 15 > webui_sigmas[-1]  # linear betas reach sigma 25.1, scaled-linear 14.6


def kinds(block):
    return [type(layer).__name__ for layer in block]


def test_sdxl_layout_sites_match_the_sdxl_module():
    unet = meta_unet(SDXL_LAYOUT)
    with torch.device("meta"):
        motion = MotionModuleSet(sdxl_spec(320))
    pairs = match_sites(unet, motion)
    down = [f"input_blocks.{i}" for i in (1, 2, 4, 5, 7, 8)]
    assert [site.place for site, _ in pairs] == down + [f"output_blocks.{i}" for i in range(9)]
    up = [1280] * 3 + [640] * 3 + [320] * 3
    assert [site.channels for site, _ in pairs] == [320, 320, 640, 640, 1280, 1280] + up
    for site, _ in pairs:
        if site.place in ("output_blocks.2", "output_blocks.5"):
            assert kinds(site.block)[site.index] == "Upsample"
        else:
            assert site.index == len(site.block)


def test_sdxl_module_runs_in_an_sdxl_layout_unet_only_during_a_call():
    unet, motion = tiny_sdxl_layout_unet(), randomize_(MotionModuleSet(sdxl_spec(32)), seed=3)
    x, t, c = unet_inputs()
    with torch.no_grad():
        plain = unet(x, t, context=c)
        with inject_motion(unet, motion) as injected:
            assert len(injected.places) == 15
            assert torch.equal(unet(x, t, context=c), plain)
            with injected.slot.use(MotionCall(frames=FRAMES)):
                animated = unet(x, t, context=c)
                first_clip = unet(x[:FRAMES], t[:FRAMES], context=c[:FRAMES])
    assert (animated - plain).abs().max() > 1e-3
    torch.testing.assert_close(animated[:FRAMES], first_clip, rtol=1e-4, atol=1e-5)


def test_small_model_sites_come_from_its_structure():
    with torch.device("meta"):
        unet, motion = small_model.build_unet(), MotionModuleSet(small_model.motion_spec())
    pairs = match_sites(unet, motion)
    assert [site.place for site, _ in pairs] == ["input_blocks.1", "input_blocks.3"] + [
        f"output_blocks.{i}" for i in range(4)]
    assert [site.channels for site, _ in pairs] == [64, 128, 128, 128, 64, 64]


def sdxl_into_tiny_sd15():
    return randomize_(MotionModuleSet(sdxl_spec(32)))


def test_family_mismatch_is_refused_before_anything_changes():
    unet = tiny_sd15_unet()
    before = snapshot(unet)
    with pytest.raises(AnimLongError, match=r"made for SDXL \(3 levels.*UNet is SD1.5 \(4 levels.*made for SD1.5"):
        with inject_motion(unet, sdxl_into_tiny_sd15()):
            pass
    assert_restored(before, snapshot(unet))


def test_sd15_module_into_an_sdxl_unet_is_refused_naming_both():
    with torch.device("meta"):
        motion = MotionModuleSet(sd15_spec("v2"))
    with pytest.raises(AnimLongError, match=r"\(v2\) is made for SD1.5 .*UNet is SDXL .*made for SDXL"):
        match_sites(meta_unet(SDXL_LAYOUT), motion)


def test_a_module_of_another_topology_is_refused_by_name():
    with torch.device("meta"):
        sprites = MotionModuleSet(small_model.motion_spec())
    with pytest.raises(AnimLongError, match="made for a custom 2-level UNet .*UNet is SD1.5"):
        match_sites(meta_sd15_unet(), sprites)
    with torch.device("meta"):
        full_size = MotionModuleSet(sd15_spec("v3"))
    with pytest.raises(AnimLongError, match=r"SD1.5 \(4 levels, channels \[320.*SD1.5 \(4 levels, channels \[32,"
                                            r".*channel counts differ"):
        match_sites(tiny_sd15_unet(), full_size)


def test_unknown_attention_is_refused_before_anything_changes():
    unet = tiny_sd15_unet()
    before = snapshot(unet)
    with pytest.raises(AnimLongError, match="Unknown attention 'flash'.*sdpa"):
        with inject_motion(unet, tiny_motion("v2"), attention="flash"):
            pass
    assert_restored(before, snapshot(unet))


def test_double_injection_is_refused_and_the_first_stays_intact():
    unet = tiny_sd15_unet()
    with inject_motion(unet, tiny_motion("v2")) as injected:
        with pytest.raises(AnimLongError, match="already injected"):
            with inject_motion(unet, tiny_motion("v2")):
                pass
        assert len(injected.places) == 21
        assert sum(type(m).__name__ == "MotionSite" for m in unet.modules()) == 21
    assert not any(type(m).__name__ == "MotionSite" for m in unet.modules())
