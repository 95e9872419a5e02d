"""Attention over the frame axis as one swappable function (torch SDPA, xformers, or plain math).

Every implementation takes q (batch, heads, Fq, d), k and v (batch, heads, Fk, d) and a softmax scale and
returns (batch, heads, Fq, d). The choice is made once per injection, never branched on inside a layer.
"""
from typing import Callable

import torch
import torch.nn.functional as F

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


def plain_attention(q, k, v, scale):
    weights = torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1)
    return weights @ v


def sdpa_attention(q, k, v, scale):
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def xformers_attention(q, k, v, scale):
    import xformers.ops  # only chosen when the webui runs with xformers on CUDA

    # xformers wants (batch, tokens, heads, d) and contiguous memory
    out = xformers.ops.memory_efficient_attention(
        q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous(),
        scale=scale)
    return out.transpose(1, 2)


ATTENTION = {"sdpa": sdpa_attention, "xformers": xformers_attention, "plain": plain_attention}


def choose_attention(name: str = "auto", device: torch.device = torch.device("cpu")) -> AttentionFn:
    """'auto' takes xformers on CUDA when it imports, else torch SDPA."""
    if name == "auto":
        if device.type == "cuda":
            try:
                import xformers.ops  # noqa: F401
                return xformers_attention
            except Exception:
                pass
        return sdpa_attention
    return ATTENTION[name]
