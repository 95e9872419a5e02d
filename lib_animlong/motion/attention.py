"""Attention over the frame axis as one swappable function (torch SDPA, xformers, or plain math).

Every implementation takes q (batch, heads, Fq, d), k and v (batch, heads, Fk, d) and a softmax scale and
returns (batch, heads, Fq, d). The backend is chosen by the caller by name, once per injection, never by
the device and never branched on inside a layer: the webui adapter passes the webui's own cross-attention
optimisation (lib_animlong.webui.attention), the headless renderer torch's SDPA.

The temporal batch is every spatial position of every video of a call: at 512 px a cond+uncond call is
2 x 64 x 64 = 8192 sequences x 8 heads = 65 536 rows. xformers 0.0.21-0.0.26 (the webui ships
0.0.23.post1) fails with "CUDA error: invalid configuration argument" from 65 536 rows (batch x heads) on
(facebookresearch/xformers#845), and torch's memory-efficient SDPA kernel derives from the same code, so
both run in chunks of at most `ROW_LIMITS[name]` rows. Chunks split the batch only: every sequence is
computed whole, so the result equals the unchunked one.
"""
from contextlib import nullcontext
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

from ..errors import AnimLongError

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]

# The most batch x heads rows one kernel call may take (None: no limit). 65 535 = the CUDA grid's y/z limit.
CUDA_GRID_ROWS = 65535


def plain_attention(q, k, v, scale):
    weights = torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1)
    return weights @ v


def sdpa_attention(q, k, v, scale):
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def sdpa_no_mem_attention(q, k, v, scale):
    """SDPA without the memory-efficient kernel (the webui's "sdp-no-mem": deterministic results)."""
    with _without_memory_efficient_kernel(q.device):
        return F.scaled_dot_product_attention(q, k, v, scale=scale)


def xformers_attention(q, k, v, scale):
    import xformers.ops  # only chosen when the webui itself runs with xformers

    # xformers wants (batch, tokens, heads, d) and contiguous memory
    out = xformers.ops.memory_efficient_attention(
        q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous(),
        scale=scale)
    return out.transpose(1, 2)


ATTENTION: Dict[str, AttentionFn] = {"sdpa": sdpa_attention, "sdpa-no-mem": sdpa_no_mem_attention,
                                     "xformers": xformers_attention, "plain": plain_attention}
ROW_LIMITS: Dict[str, Optional[int]] = {"sdpa": CUDA_GRID_ROWS, "sdpa-no-mem": CUDA_GRID_ROWS,
                                        "xformers": CUDA_GRID_ROWS, "plain": None}


def check_attention(name: str) -> None:
    if name not in ATTENTION:
        raise AnimLongError(f"Unknown attention '{name}': use one of {', '.join(ATTENTION)}.")


def choose_attention(name: str, row_limit: Optional[int] = -1) -> AttentionFn:
    """The backend `name` (one of ATTENTION), run in chunks of at most `row_limit` batch x heads rows.

    row_limit -1: the backend's own limit (ROW_LIMITS); None: never chunked. Raises AnimLongError for an
    unknown name."""
    check_attention(name)
    limit = ROW_LIMITS[name] if row_limit == -1 else row_limit
    return ATTENTION[name] if limit is None else chunked(ATTENTION[name], limit)


def chunked(fn: AttentionFn, row_limit: int) -> AttentionFn:
    """`fn` over slices of the batch so that no call gets more than `row_limit` rows (batch x heads)."""
    if row_limit < 1:
        raise ValueError(f"row_limit must be at least 1, got {row_limit}")

    def attention(q, k, v, scale):
        batch, heads = q.shape[0], q.shape[1]
        per_call = max(1, row_limit // heads)
        if batch <= per_call:
            return fn(q, k, v, scale)
        return torch.cat([fn(q[i:i + per_call], k[i:i + per_call], v[i:i + per_call], scale)
                          for i in range(0, batch, per_call)])

    attention.row_limit = row_limit
    attention.backend = fn
    return attention


def _without_memory_efficient_kernel(device: torch.device):
    if device.type != "cuda":
        return nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel   # torch >= 2.3
        return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH])
    except ImportError:                                          # torch 2.1 / 2.2 (the webui's)
        return torch.backends.cuda.sdp_kernel(enable_flash=True, enable_math=True, enable_mem_efficient=False)
