"""The AnimateDiff temporal transformer in plain torch, with the original files' parameter names.

A `MotionModuleSet` built from a `MotionSpec` loads an original state dict with `strict=True`:
    down_blocks.{i}.motion_modules.{j}.temporal_transformer.*
    mid_block.motion_modules.0.temporal_transformer.*
    up_blocks.{i}.motion_modules.{j}.temporal_transformer.*
SD1.5 semantics: GroupNorm per frame. SDXL beta: GroupNorm over all frames of a clip (`norm_across_frames`).
"""
import math
from typing import List, Optional, Tuple

import torch
from einops import rearrange
from torch import nn

from ..errors import AnimLongError
from .attention import AttentionFn, sdpa_attention
from .call import MotionCall
from .spec import MotionSpec  # noqa: F401  (defined without torch; imported from here by many modules)

HEADS = 8


def sinusoid_table(length: int, channels: int) -> torch.Tensor:
    """The fixed sinusoid AnimateDiff uses: even channels sin, odd channels cos, shape (1, length, C)."""
    # device="cpu" explicitly: built under torch.device("meta") (inspect's shape checks) a meta arange pulls
    # in torch._dynamo, seconds of imports
    cpu = torch.device("cpu")
    position = torch.arange(length, dtype=torch.float64, device=cpu).unsqueeze(1)
    div = torch.exp(torch.arange(0, channels, 2, dtype=torch.float64, device=cpu) * (-math.log(10000.0) / channels))
    pe = torch.zeros(1, length, channels, dtype=torch.float64, device=cpu)
    pe[0, :, 0::2] = torch.sin(position * div)
    pe[0, :, 1::2] = torch.cos(position * div)
    return pe.float()


def check_rows(rows: int, frames: int) -> None:
    """The rows of one UNet call must be whole windows of `frames` frames."""
    if frames < 1 or rows % frames:
        raise AnimLongError(
            f"The UNet was called with {rows} rows, which is not a whole number of {frames}-frame windows. "
            "Another extension may be changing the batch while long animation is on; disable it or "
            "report which one.")


class PositionalEncoding(nn.Module):
    def __init__(self, channels: int, length: int, persistent: bool = True):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(length, channels), persistent=persistent)


class TemporalSelfAttention(nn.Module):
    """Self-attention over frames; each spatial position is one sequence of F tokens."""

    def __init__(self, channels: int, pe_length: int, has_pe_keys: bool = True):
        super().__init__()
        self.heads = HEADS
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_k = nn.Linear(channels, channels, bias=False)
        self.to_v = nn.Linear(channels, channels, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])
        self.pos_encoder = PositionalEncoding(channels, pe_length, persistent=has_pe_keys)
        self.attention: AttentionFn = sdpa_attention
        self.key = ""  # stable layer name, used by reference buffers

    @property
    def pe_length(self) -> int:
        return self.pos_encoder.pe.shape[1]

    def forward(self, normed: torch.Tensor, call: Optional[MotionCall]) -> torch.Tensor:
        """normed: (sequences, F, C), the LayerNorm'd input. Returns the attention output, same shape."""
        frames = normed.shape[1]
        pe = self.pos_encoder.pe[0].to(normed.dtype)
        if call is not None and call.reference is not None:
            weights = self.to_k.weight
            narrower = weights.dtype if weights.element_size() < normed.element_size() else None
            q_in, kv_in = call.reference.extend(self.key, normed, pe, call, store_dtype=narrower)
        else:
            if frames > pe.shape[0]:
                raise AnimLongError(
                    f"A window of {frames} frames is longer than this motion module's positional table "
                    f"({pe.shape[0]} frames). Lower the context length to {pe.shape[0]} or less.")
            q_in = kv_in = normed + pe[:frames]
        scale = (normed.shape[-1] // self.heads) ** -0.5
        if call is not None:
            scale *= call.motion_scale
        q = rearrange(self.to_q(q_in), "s f (h d) -> s h f d", h=self.heads)
        k = rearrange(self.to_k(kv_in), "s f (h d) -> s h f d", h=self.heads)
        v = rearrange(self.to_v(kv_in), "s f (h d) -> s h f d", h=self.heads)
        out = rearrange(self.attention(q, k, v, scale), "s h f d -> s f (h d)")
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    def __init__(self, channels: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(channels, inner * 2)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * nn.functional.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(channels, 4 * channels), nn.Dropout(0.0), nn.Linear(4 * channels, channels)])

    def forward(self, x):
        for layer in self.net:
            x = layer(x)
        return x


class TemporalTransformerBlock(nn.Module):
    def __init__(self, channels: int, pe_length: int, has_pe_keys: bool = True):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            [TemporalSelfAttention(channels, pe_length, has_pe_keys) for _ in range(2)])
        self.norms = nn.ModuleList([nn.LayerNorm(channels) for _ in range(2)])
        self.ff = FeedForward(channels)
        self.ff_norm = nn.LayerNorm(channels)

    def forward(self, h: torch.Tensor, call: Optional[MotionCall]) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms):
            h = h + attention(norm(h), call)
        return h + self.ff(self.ff_norm(h))


class TemporalTransformer(nn.Module):
    def __init__(self, channels: int, pe_length: int, norm_across_frames: bool = False, has_pe_keys: bool = True):
        super().__init__()
        self.norm = nn.GroupNorm(32, channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(channels, pe_length, has_pe_keys)])
        self.proj_out = nn.Linear(channels, channels)
        self.norm_across_frames = norm_across_frames

    def forward(self, x: torch.Tensor, call: MotionCall) -> torch.Tensor:
        """x: (videos * F, C, H, W) with the frames of one video contiguous; returns x + temporal residual."""
        frames = call.frames
        rows, _, height, width = x.shape
        check_rows(rows, frames)
        if self.norm_across_frames:
            h = rearrange(x, "(b f) c h w -> b c f h w", f=frames)
            h = rearrange(self.norm(h), "b c f h w -> (b f) c h w")
        else:
            h = self.norm(x)
        h = rearrange(h, "(b f) c h w -> (b h w) f c", f=frames)
        h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h, call)
        h = self.proj_out(h)
        h = rearrange(h, "(b h w) f c -> (b f) c h w", h=height, w=width)
        return x + h


class MotionModule(nn.Module):
    """The wrapper level the original files name `motion_modules.{j}`."""

    def __init__(self, channels: int, spec: MotionSpec):
        super().__init__()
        self.temporal_transformer = TemporalTransformer(
            channels, spec.pe_length, spec.norm_across_frames, spec.has_pe_keys)

    def forward(self, x: torch.Tensor, call: MotionCall) -> torch.Tensor:
        return self.temporal_transformer(x, call)


class MotionLevel(nn.Module):
    def __init__(self, channels: int, count: int, spec: MotionSpec):
        super().__init__()
        self.motion_modules = nn.ModuleList([MotionModule(channels, spec) for _ in range(count)])


class MotionModuleSet(nn.Module):
    """All temporal modules of one file, named as in the file. Injection decides where each one runs."""

    def __init__(self, spec: MotionSpec):
        super().__init__()
        self.spec = spec
        self.down_blocks = nn.ModuleList([MotionLevel(c, spec.down_per_level, spec) for c in spec.down_channels])
        self.up_blocks = nn.ModuleList([MotionLevel(c, spec.up_per_level, spec) for c in spec.up_channels])
        self.mid_block = MotionLevel(spec.mid_channels, 1, spec) if spec.mid_channels else None
        for name, module in self.named_modules():
            if isinstance(module, TemporalSelfAttention):
                module.key = name

    def modules_in_order(self) -> List[Tuple[str, MotionModule]]:
        """(name, module) for down levels, mid, then up levels: the order the UNet runs them."""
        named = [(f"down_blocks.{i}.motion_modules.{j}", m)
                 for i, level in enumerate(self.down_blocks) for j, m in enumerate(level.motion_modules)]
        if self.mid_block is not None:
            named.append(("mid_block.motion_modules.0", self.mid_block.motion_modules[0]))
        named += [(f"up_blocks.{i}.motion_modules.{j}", m)
                  for i, level in enumerate(self.up_blocks) for j, m in enumerate(level.motion_modules)]
        return named

    def set_attention(self, fn: AttentionFn) -> None:
        for module in self.modules():
            if isinstance(module, TemporalSelfAttention):
                module.attention = fn
