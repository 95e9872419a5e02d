"""Noise of an animation: one seed per frame like the webui, optionally FreeNoise-rescheduled.

Frame i draws its (C, H, W) noise from its own CPU generator seeded with seed + i, as the webui does for
the images of a batch, so a frame's noise does not depend on the animation's length. Ancestral samplers
(Euler a, ...) take their fresh noise at every step from the same per-frame generators, continuing after
the initial draw, as the webui's per-image random generators do. FreeNoise
(Qiu et al. 2023) instead lets the frames beyond the first window reuse the noise of the frames one window
earlier, shuffled in chunks of `stride` frames (seeded), so every window starts from the same noise
statistics and long videos keep their content.
"""
from typing import Callable, Sequence

import torch

from .errors import AnimLongError
from .options import NOISE_MODES, AnimationOptions


def frame_noise(seed: int, frames: int, shape: Sequence[int], dtype=torch.float32) -> torch.Tensor:
    """(frames, C, H, W) unit noise; frame i from torch.Generator('cpu').manual_seed(seed + i)."""
    if frames < 1:
        raise AnimLongError(f"Option 'frames' must be at least 1; got {frames}.")
    noise = torch.empty((frames,) + tuple(shape), dtype=torch.float32)
    for i in range(frames):
        generator = torch.Generator("cpu").manual_seed(int(seed) + i)
        noise[i] = torch.randn(tuple(shape), generator=generator)
    return noise.to(dtype)


def freenoise(noise: torch.Tensor, window: int, stride: int, seed: int) -> torch.Tensor:
    """Frames from `window` on copy the frames `window` earlier, each chunk of `stride` shuffled."""
    if window < 1 or stride < 1:
        raise AnimLongError(f"FreeNoise needs a window and stride of at least 1; got {window} and {stride}.")
    noise = noise.clone()
    generator = torch.Generator("cpu").manual_seed(int(seed))
    for start in range(window, noise.shape[0], stride):
        count = min(stride, noise.shape[0] - start)
        source = start - window + torch.randperm(stride, generator=generator)[:count]
        noise[start:start + count] = noise[source]
    return noise


def initial_noise(seed: int, options: AnimationOptions, shape: Sequence[int], dtype=torch.float32) -> torch.Tensor:
    """The animation's unit noise (options.frames, C, H, W) as options.noise asks."""
    noise = frame_noise(seed, options.frames, shape, dtype)
    if options.noise == "per-frame":
        return noise
    if options.noise == "freenoise":
        return freenoise(noise, options.context_length, max(1, options.context_length // 4), seed)
    raise AnimLongError(f"Option 'noise' must be one of {', '.join(NOISE_MODES)}; got {options.noise!r}.")


def ancestral_noise_sampler(seed: int, frames: Sequence[int], shape: Sequence[int],
                            device="cpu") -> Callable[..., torch.Tensor]:
    """k-diffusion's `noise_sampler(sigma, sigma_next)` for the clip made of `frames` (absolute indices):
    each call returns (len(frames), C, H, W) unit noise, row k drawn from frame frames[k]'s own CPU
    generator (seed + frame), which first skips the draw `frame_noise` makes for the initial noise. So
    frame i's noise at every step is the same whatever the animation's length, and never repeats its
    initial noise."""
    shape = tuple(shape)
    generators = []
    for frame in frames:
        generator = torch.Generator("cpu").manual_seed(int(seed) + int(frame))
        torch.randn(shape, generator=generator)            # the initial noise's draw
        generators.append(generator)

    def noise_sampler(sigma=None, sigma_next=None) -> torch.Tensor:
        noise = torch.empty((len(generators),) + shape, dtype=torch.float32)
        for k, generator in enumerate(generators):
            noise[k] = torch.randn(shape, generator=generator)
        return noise.to(device)

    return noise_sampler
