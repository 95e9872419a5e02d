"""Insert a MotionModuleSet into an ldm `UNetModel` for the duration of a `with` block.

Sites are derived from the UNet's structure, so SD1.5, SDXL-shaped and our small model share one code
path: after every input block that holds a ResBlock, in the middle block after its attention (when the
file has a mid module), and in every output block after its ResBlock/attention, before its Upsample.
For a full SD1.5 UNet that is input blocks 1, 2, 4, 5, 7, 8, 10, 11, the middle block, output blocks
0..11. Everything is checked before anything is changed, and everything is restored on any exit.
"""
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from einops import rearrange
from torch import nn

from ..errors import AnimLongError
from .attention import check_attention, choose_attention
from .call import CallSlot
from .module import MotionModule, MotionModuleSet, MotionSpec, TemporalSelfAttention, check_rows
from .placement import placed

# The schedules the modules were trained with (1000 steps), by version, else by family. "linear" = betas
# evenly spaced (AnimateDiff SD1.5, HotShot-XL); "scaled_linear" = sqrt(betas) evenly spaced, squared (the
# SD/SDXL default, which AnimateDiff's SDXL beta kept, with its 0.020 end).
TRAINING_SCHEDULES = {"SD1.5": ("linear", 0.00085, 0.012), "SDXL": ("scaled_linear", 0.00085, 0.020),
                      "HotShot-XL": ("linear", 0.00085, 0.012)}
UNET_FAMILIES = {4: "SD1.5", 3: "SDXL"}


class MotionSite(nn.Module):
    """Runs one motion module while a MotionCall is set on the slot; the identity otherwise."""

    def __init__(self, module: MotionModule, slot: CallSlot):
        super().__init__()
        self.module = module
        self.slot = slot

    def forward(self, x):
        call = self.slot.current
        return x if call is None else self.module(x, call)


@dataclass
class Site:
    place: str                  # e.g. "input_blocks.1"
    block: nn.Module            # the TimestepEmbedSequential to insert into
    index: int                  # position of the inserted module
    channels: int


@dataclass
class Injected:
    slot: CallSlot
    motion: MotionModuleSet
    places: List[str]


def training_alphas_cumprod(spec: MotionSpec) -> torch.Tensor:
    kind, start, end = TRAINING_SCHEDULES.get(spec.version) or TRAINING_SCHEDULES.get(
        spec.family, TRAINING_SCHEDULES["SD1.5"])
    if kind == "linear":
        betas = torch.linspace(start, end, 1000, dtype=torch.float64)
    else:
        betas = torch.linspace(start ** 0.5, end ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def _kind(layer: nn.Module) -> str:
    return type(layer).__name__


def _res_channels(block: nn.Module) -> Optional[int]:
    for layer in block:
        if _kind(layer) == "ResBlock":
            return layer.out_channels
    return None


def find_sites(unet: nn.Module, with_mid: bool) -> Tuple[List[List[Site]], Optional[Site], List[List[Site]]]:
    """Down sites grouped by level, the mid site, and up sites grouped by level."""
    down: List[List[Site]] = [[]]
    for i, block in enumerate(unet.input_blocks):
        if any(_kind(layer) == "Downsample" for layer in block):
            down.append([])
        channels = _res_channels(block)
        if channels is not None:
            down[-1].append(Site(f"input_blocks.{i}", block, len(block), channels))
    mid = None
    if with_mid:
        layers = list(unet.middle_block)
        attention = [k for k, layer in enumerate(layers) if _kind(layer) == "SpatialTransformer"]
        index = attention[0] + 1 if attention else 1
        mid = Site("middle_block", unet.middle_block, index, _res_channels(unet.middle_block))
    up: List[List[Site]] = [[]]
    for i, block in enumerate(unet.output_blocks):
        layers = list(block)
        upsample = [k for k, layer in enumerate(layers) if _kind(layer) == "Upsample"]
        up[-1].append(Site(f"output_blocks.{i}", block, upsample[0] if upsample else len(layers),
                           _res_channels(block)))
        if upsample:
            up.append([])
    return [level for level in down if level], mid, [level for level in up if level]


def _describe(channels: List[int]) -> str:
    return f"{len(channels)} levels, channels {channels}"


def _family(levels: int, named: Optional[str] = None) -> str:
    """The family a level count belongs to; a file's own family only when its topology is that family's."""
    family = UNET_FAMILIES.get(levels, "custom")
    return named if named == family else f"a custom {levels}-level UNet" if family == "custom" else family


def match_sites(unet: nn.Module, motion: MotionModuleSet) -> List[Tuple[Site, MotionModule]]:
    """Pair each motion module with its UNet site, or refuse with a message naming both families."""
    spec = motion.spec
    down, mid, up = find_sites(unet, with_mid=motion.mid_block is not None)
    unet_shape = [[s.channels for s in level] for level in down]
    module_shape = [[m.temporal_transformer.proj_in.in_features for m in level.motion_modules]
                    for level in motion.down_blocks]
    up_unet = [[s.channels for s in level] for level in up]
    up_module = [[m.temporal_transformer.proj_in.in_features for m in level.motion_modules]
                 for level in motion.up_blocks]
    if unet_shape != module_shape or up_unet != up_module or (mid and mid.channels != spec.mid_channels):
        unet_family = _family(len(down))
        module_family = _family(len(module_shape), spec.family)
        advice = ("Load a checkpoint of the module's family, or pick a motion module made for "
                  f"{unet_family}." if module_family != unet_family else
                  "The channel counts differ: this module was trained for another UNet of that family; "
                  "pick one made for the loaded checkpoint.")
        raise AnimLongError(
            f"This motion module ({spec.version}) is made for {module_family} "
            f"({_describe([level[0] for level in module_shape])}) but the loaded checkpoint's UNet is "
            f"{unet_family} ({_describe([level[0] for level in unet_shape])}). {advice}")
    sites = [s for level in down for s in level] + ([mid] if mid else []) + [s for level in up for s in level]
    return list(zip(sites, [m for _, m in motion.modules_in_order()]))


def _clip_pooled_group_norm(norm: nn.GroupNorm, slot: CallSlot):
    """v1 modules were trained with the UNet's GroupNorms pooling all frames of a clip."""
    per_frame = norm.forward

    def forward(x):
        call = slot.current
        if call is None:
            return per_frame(x)
        check_rows(x.shape[0], call.frames)
        pooled = rearrange(x, "(b f) c h w -> b c f h w", f=call.frames)
        pooled = nn.GroupNorm.forward(norm, pooled.float()).type(x.dtype)
        return rearrange(pooled, "b c f h w -> (b f) c h w")

    return forward


def _unet_group_norms(unet: nn.Module) -> List[nn.GroupNorm]:
    norms = [layer for module in unet.modules() if _kind(module) == "ResBlock"
             for layer in module.modules() if isinstance(layer, nn.GroupNorm)]
    norms += [layer for layer in unet.out if isinstance(layer, nn.GroupNorm)]
    return norms


@contextmanager
def inject_motion(unet: nn.Module, motion: MotionModuleSet, schedule_owner=None, attention: str = "sdpa"):
    """Run `unet` with `motion` inserted; yields an `Injected` whose `slot` the window engine sets.

    The modules run on the UNet's device and dtype: `motion` itself when it is already there, else a copy
    made for the block and emptied at exit (motion.placement.placed), so a cached module is never moved
    or rounded. A caller that enters this block once per model call should place the module for the
    whole sampling pass first. attention: the temporal attention backend, by name (motion.attention.ATTENTION;
    the caller's explicit choice, e.g. the webui's own optimisation), run in chunks under its row limit.
    schedule_owner: an object with `alphas_cumprod` (the webui's `shared.sd_model`) that receives the
    module's training schedule while active. On exit by any path the UNet's module tree, parameters,
    patched forwards and the schedule are exactly as before.
    """
    if any(isinstance(m, MotionSite) for m in unet.modules()):
        raise AnimLongError("Motion modules are already injected into this UNet; finish or cancel the "
                            "running animation first.")
    check_attention(attention)
    match_sites(unet, motion)   # refuse a module for another UNet before anything is copied
    parameter = next(unet.parameters())
    with placed(motion, parameter.device, parameter.dtype) as running:
        with _attention(running, choose_attention(attention)):
            with _inserted(unet, running, match_sites(unet, running), schedule_owner) as injected:
                yield injected


@contextmanager
def _attention(motion: MotionModuleSet, fn):
    layers = [m for m in motion.modules() if isinstance(m, TemporalSelfAttention)]
    saved = [layer.attention for layer in layers]
    motion.set_attention(fn)
    try:
        yield
    finally:
        for layer, previous in zip(layers, saved):
            layer.attention = previous


@contextmanager
def _inserted(unet: nn.Module, motion: MotionModuleSet, pairs, schedule_owner):
    slot = CallSlot()
    saved_blocks: Dict[int, Tuple[nn.Module, "OrderedDict[str, nn.Module]"]] = {}
    saved_norms: List[Tuple[nn.Module, Dict]] = []
    saved_schedule = None
    try:
        for site, module in sorted(pairs, key=lambda pair: -pair[0].index):  # later positions first
            block = site.block
            saved_blocks.setdefault(id(block), (block, OrderedDict(block._modules)))
            items = list(block._modules.items())
            items.insert(site.index, (f"animlong_motion_{site.index}", MotionSite(module, slot)))
            block._modules.clear()
            block._modules.update(items)
        if motion.spec.pooled_unet_groupnorm:
            for norm in _unet_group_norms(unet):
                saved_norms.append((norm, dict(norm.__dict__)))
                norm.forward = _clip_pooled_group_norm(norm, slot)
        if schedule_owner is not None:
            saved_schedule = schedule_owner.alphas_cumprod
            schedule_owner.alphas_cumprod = training_alphas_cumprod(motion.spec).to(
                device=saved_schedule.device, dtype=saved_schedule.dtype)
        yield Injected(slot, motion, [site.place for site, _ in pairs])
    finally:
        slot.current = None
        if saved_schedule is not None:
            schedule_owner.alphas_cumprod = saved_schedule
        for norm, attributes in saved_norms:
            norm.__dict__.clear()
            norm.__dict__.update(attributes)
        for block, modules in saved_blocks.values():
            block._modules.clear()
            block._modules.update(modules)
