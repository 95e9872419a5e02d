"""Motion-module files with the real key names and random weights, for tests and benchmarks.

Every parameter is random (proj_out and the norm affines too): a freshly built module with a zero
proj_out is the identity and would prove nothing.
"""
from dataclasses import replace
from typing import Dict, Optional

import torch

from .module import MotionModuleSet, MotionSpec


def sd15_spec(version: str = "v2", width: int = 320, pe_length: Optional[int] = None) -> MotionSpec:
    """SD1.5 layouts (v1, v2, v3, AnimateLCM, LongAnimateDiff) at any width (320 is full size)."""
    c = (width, width * 2, width * 4, width * 4)
    pe = pe_length or {"v1": 24, "LongAnimateDiff": 64, "AnimateLCM": 64}.get(version, 32)
    return MotionSpec(family="SD1.5", version=version, down_channels=c, down_per_level=2,
                      up_channels=tuple(reversed(c)), up_per_level=3,
                      mid_channels=c[-1] if version in ("v2", "AnimateLCM") else None, pe_length=pe,
                      pooled_unet_groupnorm=version == "v1", has_pe_keys=version != "AnimateLCM")


def sdxl_spec(width: int = 320) -> MotionSpec:
    c = (width, width * 2, width * 4)
    return MotionSpec(family="SDXL", version="SDXL-beta", down_channels=c, down_per_level=2,
                      up_channels=tuple(reversed(c)), up_per_level=3, mid_channels=None, pe_length=32,
                      norm_across_frames=True)


def randomize_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Every parameter random, seeded: weights of norms around 1, everything else around 0."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=generator) * scale
            p.copy_(noise + 1.0 if name.endswith("weight") and p.ndim == 1 else noise)
    return module


def random_state_dict(spec: MotionSpec, seed: int = 0, dtype=torch.float32) -> Dict[str, torch.Tensor]:
    """A complete state dict for spec; on a `meta` default device only shapes are made (free at full size)."""
    module = MotionModuleSet(spec)
    if next(module.parameters()).is_meta:
        return {k: v.to(dtype) for k, v in module.state_dict().items()}
    return {k: v.to(dtype) for k, v in randomize_(module, seed).state_dict().items()}


def wrapped(state: Dict[str, torch.Tensor], state_dict: bool = False, module_prefix: bool = False) -> Dict:
    """The same tensors as many downloaded files carry them: under `state_dict` and/or with `module.`."""
    if module_prefix:
        state = {"module." + k: v for k, v in state.items()}
    return {"state_dict": state} if state_dict else state


def hotshot_spec(width: int = 320) -> MotionSpec:
    """HotShot-XL: the SDXL topology with a 24-row table, per-frame module GroupNorm, pooled UNet GroupNorms."""
    return replace(sdxl_spec(width), version="HotShot-XL", pe_length=24, norm_across_frames=False,
                   pooled_unet_groupnorm=True)


def hotshot_state_dict(width: int = 320, seed: int = 0, dtype=torch.float32) -> Dict[str, torch.Tensor]:
    """HotShot-XL's own naming: `{down,up}_blocks.{i}.temporal_attentions.{j}.*` (no `temporal_transformer`)
    and `pos_encoder.positional_encoding` for the table."""
    state = random_state_dict(hotshot_spec(width), seed, dtype)
    return {k.replace(".motion_modules.", ".temporal_attentions.").replace(".temporal_transformer.", ".")
             .replace("pos_encoder.pe", "pos_encoder.positional_encoding"): v for k, v in state.items()}


def random_motion_lora(spec: MotionSpec, rank: int = 4, seed: int = 0) -> Dict[str, torch.Tensor]:
    """A MotionLoRA in the original format for every temporal attention projection of spec."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    with torch.device("meta"):
        names = [(name, m.to_q.in_features) for name, m in MotionModuleSet(spec).named_modules()
                 if name.endswith(("attention_blocks.0", "attention_blocks.1"))]
    for name, channels in names:
        for projection in ("q", "k", "v", "out"):
            prefix = f"{name}.processor.to_{projection}_lora"
            state[f"{prefix}.down.weight"] = torch.randn(rank, channels, generator=generator) * 0.1
            state[f"{prefix}.up.weight"] = torch.randn(channels, rank, generator=generator) * 0.1
    return state


def save(state: Dict[str, torch.Tensor], path: str) -> str:
    if path.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    return path
