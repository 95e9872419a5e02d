"""Pinned frames: frames whose clean latent is known (img2img's first frame, keyframes from an earlier pass,
a last frame) are held to it at every step.

"noised" pins (the classic way) replace the frame's input by x0 + sigma * (the frame's own noise) and its
denoised output by x0, so an Euler step lands exactly on x0 + sigma_next * noise. A strength s < 1 blends
input and output with what the model had (s * pinned + (1 - s) * free), and `fade` lowers s linearly over
the steps. "clean" pins show the model the clean latent at noise level 0 (its rows' sigma is set to 0),
which the oracle benchmark found seam-free next to noisy frames; whether a trained motion module agrees is
for the small model to tell.

`keyframes_first` builds the two-pass mode from this: sparse keyframes sampled jointly, then every frame
with the keyframes pinned.
"""
import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ..errors import AnimLongError
from ..options import PIN_MODES, AnimationOptions


@dataclass(frozen=True)
class Pin:
    frame: int
    latent: torch.Tensor    # (C, H, W) for every block, or (blocks, C, H, W) one per block
    noise: torch.Tensor     # the frame's own unit noise, same shape as latent
    strength: float = 1.0
    fade: float = 0.0       # 0: constant; 1: the strength falls linearly to 0 at the last step
    mode: str = "noised"


class PinnedFrames:
    """The pins of one sampling run; the windowed denoiser applies them around every evaluation."""

    def __init__(self, pins: Sequence[Pin]):
        frames = [pin.frame for pin in pins]
        if len(set(frames)) != len(frames):
            raise AnimLongError(f"Frames {sorted(frames)} are pinned more than once; pin each frame once.")
        for pin in pins:
            _check(pin)
        self.pins = tuple(pins)

    def strength(self, pin: Pin, step: int, total_steps: int) -> float:
        progress = step / max(1, total_steps - 1)
        return pin.strength * (1.0 - pin.fade * min(1.0, progress))

    def apply_input(self, x: torch.Tensor, sigma, step: int, total_steps: int, n: int,
                    rows_of: Optional[Callable[[int], List[int]]] = None):
        """(x, sigma) with pinned frames replaced; x and sigma are copied, never modified.
        rows_of(frame): the rows of x holding that frame (default: x is whole blocks of n frames)."""
        if not self.pins:
            return x, sigma
        x = x.clone()
        sigma_rows = _per_row(sigma, x.shape[0], x)
        for pin in self.pins:
            rows = _frame_rows(pin.frame, x.shape[0], n, x.device, rows_of)
            blocks = len(rows)
            if not blocks:
                continue
            latent, noise = _blocks(pin.latent, blocks, x), _blocks(pin.noise, blocks, x)
            level = sigma_rows[rows].to(x.dtype).view((blocks,) + (1,) * (x.dim() - 1))
            if pin.mode == "clean":
                x[rows] = latent
                sigma_rows[rows] = 0
                continue
            s = self.strength(pin, step, total_steps)
            x[rows] = s * (latent + level * noise) + (1 - s) * x[rows]
        return x, sigma_rows if any(pin.mode == "clean" for pin in self.pins) else sigma

    def apply_output(self, out: torch.Tensor, step: int, total_steps: int, n: int,
                     rows_of: Optional[Callable[[int], List[int]]] = None) -> torch.Tensor:
        """The denoised output with pinned frames pulled to their clean latent (in place on `out`)."""
        for pin in self.pins:
            rows = _frame_rows(pin.frame, out.shape[0], n, out.device, rows_of)
            blocks = len(rows)
            if not blocks:
                continue
            s = 1.0 if pin.mode == "clean" else self.strength(pin, step, total_steps)
            out[rows] = s * _blocks(pin.latent, blocks, out) + (1 - s) * out[rows]
        return out


def _check(pin: Pin) -> None:
    if pin.mode not in PIN_MODES:
        raise AnimLongError(f"Option 'pin_mode' must be one of {', '.join(PIN_MODES)}; got {pin.mode!r}.")
    if not 0.0 <= pin.strength <= 1.0:
        raise AnimLongError(f"The strength of pinned frame {pin.frame} must be within 0..1; got {pin.strength}.")
    if not 0.0 <= pin.fade <= 1.0:
        raise AnimLongError(f"Option 'pin_fade' must be within 0..1; got {pin.fade}.")
    if pin.mode == "clean" and (pin.strength != 1.0 or pin.fade != 0.0):
        raise AnimLongError(f"Frame {pin.frame} is pinned 'clean', which has no partial strength; use "
                            "pin_mode 'noised' for a strength below 1 or a fade.")
    if pin.latent.shape != pin.noise.shape:
        raise AnimLongError(f"Pinned frame {pin.frame}: latent {tuple(pin.latent.shape)} and noise "
                            f"{tuple(pin.noise.shape)} differ in shape.")


def _frame_rows(frame: int, rows: int, n: int, device, rows_of) -> torch.Tensor:
    if not 0 <= frame < n:
        raise AnimLongError(f"Pinned frame {frame} is outside the animation's frames 0..{n - 1}.")
    if rows_of is not None:
        return torch.tensor(rows_of(frame), dtype=torch.long, device=device)
    return torch.arange(rows // n, device=device) * n + frame


def _blocks(value: torch.Tensor, blocks: int, like: torch.Tensor) -> torch.Tensor:
    """A pin's per-frame tensor as (blocks, C, H, W) on like's device and dtype."""
    value = value.to(device=like.device, dtype=like.dtype)
    if value.dim() == like.dim() - 1:
        return value.unsqueeze(0).expand((blocks,) + tuple(value.shape))
    if value.shape[0] != blocks:
        raise AnimLongError(f"A pinned latent has {value.shape[0]} blocks but the model call has {blocks}.")
    return value


def _per_row(sigma, rows: int, like: torch.Tensor) -> torch.Tensor:
    sigma = torch.as_tensor(sigma, device=like.device)
    if sigma.dim() == 0:
        return sigma.expand(rows).clone()
    return sigma.clone()


def image_pins(options: AnimationOptions, noise: torch.Tensor, first: Optional[torch.Tensor] = None,
               last: Optional[torch.Tensor] = None) -> PinnedFrames:
    """img2img: pin the init latent as frame 0 and an optional last latent as the last frame.

    noise: the animation's initial unit noise (frames, C, H, W); latents are (C, H, W)."""
    pins = []
    if first is not None and options.first_frame_strength > 0:
        pins.append(Pin(0, first, noise[0], options.first_frame_strength, options.pin_fade, options.pin_mode))
    if last is not None and options.last_frame_strength > 0:
        frame = noise.shape[0] - 1
        pins.append(Pin(frame, last, noise[frame], options.last_frame_strength, options.pin_fade,
                        options.pin_mode))
    return PinnedFrames(pins)


def keyframe_indices(num_frames: int, stride: int) -> List[int]:
    if stride < 1:
        raise AnimLongError(f"Option 'keyframe_stride' must be at least 1 here; got {stride}.")
    return list(range(0, num_frames, stride))


def keyframe_stride(options: AnimationOptions) -> int:
    """options.keyframe_stride, or (0) the smallest stride whose keyframes fit one window."""
    return options.keyframe_stride or max(1, math.ceil(options.frames / options.context_length))


SamplePass = Callable[[Sequence[int], PinnedFrames], torch.Tensor]


def keyframes_first(sample: SamplePass, noise: torch.Tensor, options: AnimationOptions,
                    extra: Sequence[Pin] = ()) -> Tuple[torch.Tensor, List[int]]:
    """Two passes. `sample(frames, pins)` samples the clip made of `frames` (absolute indices, in order;
    pins count frames within that clip) from noise[frames] and returns its clean latents (len(frames),
    C, H, W). Pass 1 samples the keyframes jointly, pass 2 every frame with the keyframes pinned.
    `extra` pins (e.g. img2img's first frame, absolute frames) apply in both passes.
    Returns (latents of all frames, keyframe indices)."""
    keys = keyframe_indices(noise.shape[0], keyframe_stride(options))
    position = {frame: k for k, frame in enumerate(keys)}
    first_pass = [Pin(position[p.frame], p.latent, p.noise, p.strength, p.fade, p.mode)
                  for p in extra if p.frame in position]
    keyframes = sample(keys, PinnedFrames(first_pass))
    pinned = {p.frame: p for p in extra}
    for k, frame in enumerate(keys):
        pinned.setdefault(frame, Pin(frame, keyframes[k], noise[frame], 1.0, 0.0, options.pin_mode))
    return sample(list(range(noise.shape[0])), PinnedFrames(list(pinned.values()))), keys
