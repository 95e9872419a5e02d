"""Prompt travel: keyframe prompts written as `frame: prompt` lines, interpolated per frame.

Text form (the webui prompt box, or the headless renderer's prompt)::

    masterpiece, best quality,        <- head: lines before the first keyframe line, shared by all
    0: a cat sitting
    32: a cat jumping
       high in the air                <- a non-keyframe line between keyframes continues the one above
    64: a cat sleeping
    , photo, 4k                       <- tail: lines after the last keyframe line, shared by all

A keyframe line is a whole number, a colon and the prompt (`12: ...`, spaces allowed around the colon).
Each keyframe's prompt is head + prompt + tail. The conditioning of every frame is then interpolated
between the encoded keyframe prompts by `interpolate_conditioning`, a pure function on tensors used both by
the webui adapter (which encodes each keyframe prompt with the webui's own text encoder, so prompt editing,
attention weights, long prompts and embeddings keep working per keyframe) and by the headless renderer.
"""
import bisect
import re
from typing import Dict, Mapping, Optional, Union

import torch

from ..errors import AnimLongError

_KEYFRAME_LINE = re.compile(r"^\s*(-?\d+)\s*:(.*)$")
INTERPOLATION_MODES = ("slerp", "linear")

Conditioning = Union[torch.Tensor, Mapping[str, torch.Tensor]]


def is_prompt_travel(text: str) -> bool:
    """True when at least one line of `text` is a `frame: prompt` keyframe line."""
    return any(_KEYFRAME_LINE.match(line) for line in text.splitlines())


def parse_prompt_travel(text: str, num_frames: Optional[int] = None) -> Optional[Dict[int, str]]:
    """{frame: full prompt} in frame order, or None when `text` has no keyframe line (a plain prompt).

    Frames must be whole numbers from 0 to num_frames - 1 (when num_frames is given), each used once;
    anything else is refused with a message that names the line.
    """
    lines = text.splitlines()
    keyframe_rows = [row for row, line in enumerate(lines) if _KEYFRAME_LINE.match(line)]
    if not keyframe_rows:
        return None
    head = _join_lines(lines[:keyframe_rows[0]])
    tail = _join_lines(lines[keyframe_rows[-1] + 1:])
    prompts: Dict[int, str] = {}
    first_row_of: Dict[int, int] = {}
    for index, row in enumerate(keyframe_rows):
        match = _KEYFRAME_LINE.match(lines[row])
        frame = int(match.group(1))
        where = f"Prompt travel line {row + 1} ({lines[row].strip()!r})"
        if frame < 0:
            raise AnimLongError(f"{where}: frame {frame} is negative. Keyframes count from frame 0.")
        if num_frames is not None and frame >= num_frames:
            raise AnimLongError(f"{where}: frame {frame} is past the last frame ({num_frames - 1}; the "
                                f"animation has {num_frames} frames). Use a frame below {num_frames} or raise "
                                "the frame count.")
        if frame in prompts:
            raise AnimLongError(f"{where}: frame {frame} already has a prompt on line {first_row_of[frame] + 1}. "
                                "Give each keyframe one line.")
        continuation = lines[row + 1:keyframe_rows[index + 1]] if index + 1 < len(keyframe_rows) else []
        own = _join_lines([match.group(2)] + continuation)
        prompts[frame] = _join_prompt_parts([head, own, tail])
        first_row_of[frame] = row
    return dict(sorted(prompts.items()))


def _join_lines(lines) -> str:
    return "\n".join(line.strip() for line in lines if line.strip())


def _join_prompt_parts(parts) -> str:
    """Join with ", " unless the boundary already has a comma (so `best quality,` + `a cat` needs none)."""
    joined = ""
    for part in (p for p in parts if p):
        if not joined:
            joined = part
        elif joined.endswith(",") or part.startswith(","):
            joined = f"{joined}{part}" if part.startswith(",") else f"{joined} {part}"
        else:
            joined = f"{joined}, {part}"
    return joined


def interpolate_conditioning(keyframe_conds: Mapping[int, Conditioning], num_frames: int,
                             closed_loop: bool = False, mode: str = "slerp") -> Conditioning:
    """Per-frame conditioning, stacked on a new first dimension: (num_frames, *keyframe shape).

    `keyframe_conds` maps frame -> the encoded prompt of that keyframe: a tensor (..., tokens, dim), or a
    dict of tensors (SDXL: {"crossattn": (tokens, 2048), "vector": (2816,)}) interpolated key by key.
    Frames between two keyframes are slerped (per token vector, direction and length) or linearly
    interpolated between them; keyframe frames get their keyframe exactly. Before the first and after the
    last keyframe the nearest keyframe is held, or, with `closed_loop`, frames travel from the last keyframe
    back to the first across the loop seam.

    Keyframes with different token counts (webui prompts over 75 tokens encode to multiples of 77 rows) are
    padded to the longest by repeating their last row, exactly as the webui pads prompts of different
    lengths when it batches them, so a keyframe's conditioning attends as it would on its own.
    """
    if mode not in INTERPOLATION_MODES:
        raise AnimLongError(f"Unknown interpolation {mode!r}; choose one of {', '.join(INTERPOLATION_MODES)}.")
    if num_frames < 1:
        raise AnimLongError(f"The animation needs at least one frame, got {num_frames}.")
    if not keyframe_conds:
        raise AnimLongError("Prompt travel needs at least one keyframe prompt.")
    for frame in keyframe_conds:
        if not 0 <= frame < num_frames:
            raise AnimLongError(f"Keyframe {frame} is outside the animation's frames 0..{num_frames - 1}.")
    first = next(iter(keyframe_conds.values()))
    if isinstance(first, Mapping):
        keys = set(first)
        for frame, cond in keyframe_conds.items():
            if not isinstance(cond, Mapping) or set(cond) != keys:
                raise AnimLongError(f"Keyframe {frame}'s conditioning does not have the parts {sorted(keys)} of "
                                    "the others; encode every keyframe prompt with the same model.")
        return {key: _interpolate_tensors({f: c[key] for f, c in keyframe_conds.items()}, num_frames,
                                          closed_loop, mode) for key in first}
    return _interpolate_tensors(keyframe_conds, num_frames, closed_loop, mode)


def _interpolate_tensors(conds: Mapping[int, torch.Tensor], num_frames: int, closed_loop: bool,
                         mode: str) -> torch.Tensor:
    conds = _same_shape({frame: conds[frame] for frame in sorted(conds)})
    keys = list(conds)
    blend = _slerp if mode == "slerp" else _lerp
    wrap = closed_loop and len(keys) > 1
    per_frame = []
    for frame in range(num_frames):
        after = bisect.bisect_left(keys, frame)
        if after < len(keys) and keys[after] == frame:
            per_frame.append(conds[frame])
            continue
        # The neighbouring keyframes; across the loop seam they sit one animation length away.
        previous = keys[after - 1] if after > 0 else (keys[-1] - num_frames if wrap else None)
        following = keys[after] if after < len(keys) else (keys[0] + num_frames if wrap else None)
        if previous is None or following is None:  # held before the first / after the last keyframe
            per_frame.append(conds[keys[0] if previous is None else keys[-1]])
            continue
        t = (frame - previous) / (following - previous)
        per_frame.append(blend(conds[previous % num_frames], conds[following % num_frames], t))
    return torch.stack(per_frame)


def _same_shape(conds: Dict[int, torch.Tensor]) -> Dict[int, torch.Tensor]:
    """Pad token rows (dim -2) to the longest keyframe by repeating the last row; refuse other mismatches."""
    shapes = {frame: tuple(c.shape) for frame, c in conds.items()}
    first_frame, reference = next(iter(shapes.items()))
    for frame, shape in shapes.items():
        if len(shape) != len(reference) or shape[:-2] != reference[:-2] or shape[-1:] != reference[-1:]:
            raise AnimLongError(f"Keyframe {frame}'s conditioning has shape {shape} but keyframe {first_frame}'s "
                                f"has {reference}; only the token count may differ. Encode every keyframe "
                                "prompt with the same text encoder.")
    if len(reference) < 2:
        return conds
    rows = max(shape[-2] for shape in shapes.values())
    padded = {}
    for frame, cond in conds.items():
        missing = rows - cond.shape[-2]
        if missing:
            cond = torch.cat([cond, cond[..., -1:, :].expand(*cond.shape[:-2], missing, cond.shape[-1])], dim=-2)
        padded[frame] = cond
    return padded


def _lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return (a.float() * (1 - t) + b.float() * t).to(a.dtype)


def _slerp(a: torch.Tensor, b: torch.Tensor, t: float, parallel: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation of each vector along the last dimension; nearly parallel vectors fall back
    to linear interpolation (where slerp's sin(angle) denominator vanishes)."""
    a32, b32 = a.float(), b.float()
    cosine = torch.nn.functional.cosine_similarity(a32, b32, dim=-1, eps=1e-8).clamp(-1, 1).unsqueeze(-1)
    angle = torch.acos(cosine)
    sine = torch.sin(angle)
    near = (cosine.abs() > parallel) | (sine < 1e-6)
    safe_sine = torch.where(near, torch.ones_like(sine), sine)
    spherical = (torch.sin((1 - t) * angle) * a32 + torch.sin(t * angle) * b32) / safe_sine
    linear = a32 * (1 - t) + b32 * t
    return torch.where(near, linear, spherical).to(a.dtype)
