"""What a motion-module file holds, in plain Python (no torch): the spec a module set is built from and the
names and shapes of its parameters.

`layout_shapes(spec)` lists every key a `module.MotionModuleSet(spec)` has in its state dict, in the same
order and with the same shapes (tests/test_inspect_header.py compares them for every layout), so a file can
be checked from its header alone, without importing torch.
"""
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Tuple

FF_MULT = 4  # the feed-forward's inner width is 4 x channels; GEGLU doubles its projection (AnimateDiff's FeedForward)
ATTENTION_BLOCKS = 2  # two temporal self-attentions per transformer block ("Temporal_Self", "Temporal_Self")


@dataclass(frozen=True)
class MotionSpec:
    """Everything needed to build the module set; recognised from a file's keys (motion.formats)."""
    family: str                        # "SD1.5" or "SDXL"
    version: str                       # "v1", "v2", "v3", "AnimateLCM", "LongAnimateDiff", "SDXL-beta", ...
    down_channels: Tuple[int, ...]     # channels per down level (SD1.5: 320, 640, 1280, 1280)
    down_per_level: int                # modules per down level (2)
    up_channels: Tuple[int, ...]       # channels per up level (SD1.5: 1280, 1280, 640, 320)
    up_per_level: int                  # modules per up level (3)
    mid_channels: Optional[int]        # channels of the mid module, None when the file has none
    pe_length: int                     # rows of the positional table: the longest window the module knows
    norm_across_frames: bool = False   # SDXL beta: the module's GroupNorm pools all frames of a clip
    pooled_unet_groupnorm: bool = False  # v1 / HotShot: the UNet's ResBlock GroupNorms pool across frames
    has_pe_keys: bool = True           # AnimateLCM files carry no pe: the sinusoid is built, not loaded


def _sites(spec: MotionSpec) -> Iterator[Tuple[str, int]]:
    """(site, channels) in the state dict's order: down levels, up levels, then mid (the order
    MotionModuleSet registers them; the UNet runs mid before up, see MotionModuleSet.modules_in_order)."""
    for i, channels in enumerate(spec.down_channels):
        for j in range(spec.down_per_level):
            yield f"down_blocks.{i}.motion_modules.{j}", channels
    for i, channels in enumerate(spec.up_channels):
        for j in range(spec.up_per_level):
            yield f"up_blocks.{i}.motion_modules.{j}", channels
    if spec.mid_channels:
        yield "mid_block.motion_modules.0", spec.mid_channels


def _transformer_shapes(c: int, spec: MotionSpec) -> Iterator[Tuple[str, Tuple[int, ...]]]:
    """One TemporalTransformer's keys (after `temporal_transformer.`) and shapes for c channels."""
    yield "norm.weight", (c,)
    yield "norm.bias", (c,)
    yield "proj_in.weight", (c, c)
    yield "proj_in.bias", (c,)
    block = "transformer_blocks.0."
    for a in range(ATTENTION_BLOCKS):
        attention = f"{block}attention_blocks.{a}."
        for projection in ("to_q", "to_k", "to_v"):
            yield f"{attention}{projection}.weight", (c, c)
        yield f"{attention}to_out.0.weight", (c, c)
        yield f"{attention}to_out.0.bias", (c,)
        if spec.has_pe_keys:
            yield f"{attention}pos_encoder.pe", (1, spec.pe_length, c)
    for n in range(ATTENTION_BLOCKS):
        yield f"{block}norms.{n}.weight", (c,)
        yield f"{block}norms.{n}.bias", (c,)
    inner = FF_MULT * c
    yield f"{block}ff.net.0.proj.weight", (2 * inner, c)
    yield f"{block}ff.net.0.proj.bias", (2 * inner,)
    yield f"{block}ff.net.2.weight", (c, inner)
    yield f"{block}ff.net.2.bias", (c,)
    yield f"{block}ff_norm.weight", (c,)
    yield f"{block}ff_norm.bias", (c,)
    yield "proj_out.weight", (c, c)
    yield "proj_out.bias", (c,)


def layout_shapes(spec: MotionSpec) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of every entry of a MotionModuleSet(spec)'s state dict, in its order."""
    return {f"{site}.temporal_transformer.{key}": shape
            for site, channels in _sites(spec) for key, shape in _transformer_shapes(channels, spec)}
