"""FreeInit: re-initialise the noise of a video from the low frequencies of a finished sample.

Wu, Si, Jiang, Huang, Liu, "FreeInit: Bridging Initialization Gap in Video Diffusion Models" (arXiv
2312.07537, 2023). A video model is trained on noisy latents whose low spatio-temporal frequencies still
carry the clean video (the signal-to-noise ratio at the last training step is not zero), but is sampled
from pure noise, whose low frequencies carry nothing; FreeInit closes that gap by sampling once, re-noising
the result to the first sigma, keeping its low frequencies, replacing its high frequencies by fresh noise,
and sampling again (each extra pass costs one whole sampling run).

In k-diffusion's variance-exploding form (x_sigma = x0 + sigma * eps; eps- and v-prediction models alike,
since k-diffusion's model wrappers take and return this form), the next pass starts from

    z = LPF(x0 + sigma * eps_0) + HPF(sigma * eps_fresh),         HPF = 1 - LPF,

with the 3-D filter (frames x height x width) applied in the FFT domain of each video separately. eps_0 is
the unit noise the first pass started from (the paper's code re-noises with that initial noise, its
scheduler's add_noise at the last training timestep), eps_fresh new unit noise per pass. With
freeinit_renoise "fresh" eps_0 is a new draw too: with a deterministic sampler x0 is a function of the
first run's noise, so re-noising with that same noise adds x0's low band to a start that already encodes
it; in the oracle world (exact denoiser) that over-strengthens the low frequencies, while fresh noise
gives a start distributed as the noised video and moves the result towards the prior's statistics
(benchmarks/oracle_freeinit.py). The DDPM form
sqrt(a) x0 + sqrt(1 - a) eps is this divided by sqrt(1 + sigma^2), which the sampler's input scaling
undoes, so nothing else depends on the model's prediction type.

Frequencies are torch.fft.fftfreq's normalised frequencies f in [-0.5, 0.5) cycles per frame / per latent
pixel; the filters read them as 2f in [-1, 1) (the paper's (2t/T - 1) after fftshift), with a spatial stop
frequency d_s and a temporal one d_t (the paper's defaults: 0.25 each), on

    D^2 = (d_s / d_t * 2 f_t)^2 + (2 f_h)^2 + (2 f_w)^2,

    butterworth (order n = 4):  1 / (1 + (D^2 / d_s^2)^n)
    gaussian:                   exp(-D^2 / (2 d_s^2))
    ideal:                      1 where D^2 <= d_s^2, else 0
    box:                        1 where |2 f_t| <= d_t and |2 f_h|, |2 f_w| <= d_s, else 0

The filters are written from the paper's description; box is symmetric about frequency 0.

Long videos: the FFT runs over all N frames of a video, O(N log N) per latent pixel, negligible next to
a sampling pass. The temporal cut-off is in cycles per frame, so d_t = 0.25 keeps content that changes
more slowly than every 8 frames at any N. The FFT is circular: the filter treats the last frame as the
neighbour of the first, so a video's two ends exchange some of their slowest content (what a closed loop
wants; for an open video it is the paper's own behaviour, on 16 frames).
"""
from typing import Sequence

import torch

from .errors import AnimLongError
from .options import FREEINIT_FILTERS as FILTERS   # ("butterworth", "gaussian", "ideal", "box")

BUTTERWORTH_ORDER = 4          # the paper's default order n


def low_pass(frames: int, height: int, width: int, kind: str = "butterworth", d_s: float = 0.25,
             d_t: float = 0.25, device=None, dtype=torch.float64) -> torch.Tensor:
    """The low-pass mask (frames, height, width) in unshifted FFT order (torch.fft.fftn's), values in
    [0, 1], symmetric in every frequency (so the filtered latents stay real).

    kind: one of FILTERS; d_s, d_t: normalised stop frequencies in (0, 1] (1: the Nyquist frequency).
    Raises AnimLongError naming the option for a bad kind or frequency."""
    if kind not in FILTERS:
        raise AnimLongError(f"Option 'freeinit_filter' must be one of {', '.join(FILTERS)}; got {kind!r}.")
    for name, value in (("freeinit_d_s", d_s), ("freeinit_d_t", d_t)):
        if not 0 < value <= 1:
            raise AnimLongError(f"Option {name!r} must be above 0 and at most 1; got {value!r}.")
    f_t, f_h, f_w = (2 * torch.fft.fftfreq(n, device=device, dtype=dtype) for n in (frames, height, width))
    f_t, f_h, f_w = f_t[:, None, None], f_h[None, :, None], f_w[None, None, :]
    if kind == "box":
        return ((f_t.abs() <= d_t) & (f_h.abs() <= d_s) & (f_w.abs() <= d_s)).to(dtype)
    d2 = (d_s / d_t * f_t) ** 2 + f_h ** 2 + f_w ** 2
    if kind == "butterworth":
        return 1 / (1 + (d2 / d_s ** 2) ** BUTTERWORTH_ORDER)
    if kind == "gaussian":
        return torch.exp(-d2 / (2 * d_s ** 2))
    return (d2 <= d_s ** 2).to(dtype)


def reinitialise(x0: torch.Tensor, frames: int, sigma, initial_noise: torch.Tensor, fresh_noise: torch.Tensor,
                 kind: str = "butterworth", d_s: float = 0.25, d_t: float = 0.25) -> torch.Tensor:
    """The next FreeInit pass's initial latents (B*N, C, H, W), in x0's dtype and device.

    x0: the finished pass's latents (B*N, C, H, W), B videos of N = `frames` frames each, video-major
    (rows b*N .. b*N + N - 1 are video b); sigma: the sampler's first sigma (k-diffusion's VE sigma, a float
    or 0-d tensor); initial_noise, fresh_noise: unit Gaussian noise of x0's shape (the first pass's and a new
    draw). Returns LPF(x0 + sigma * initial_noise) + HPF(sigma * fresh_noise), the 3-D FFT taken over
    (frames, H, W) of each video and channel separately, computed in float64. Raises AnimLongError when the
    rows are not a whole number of videos or the noise shapes differ."""
    if x0.dim() != 4 or frames < 1 or x0.shape[0] % frames:
        raise AnimLongError(f"FreeInit: the latents {tuple(x0.shape)} are not (videos * {frames} frames, C, H, W).")
    for name, noise in (("initial", initial_noise), ("fresh", fresh_noise)):
        if noise.shape != x0.shape:
            raise AnimLongError(f"FreeInit: the {name} noise {tuple(noise.shape)} does not match the latents "
                                f"{tuple(x0.shape)}.")
    rows, channels, height, width = x0.shape
    sigma = float(sigma)
    mask = low_pass(frames, height, width, kind, d_s, d_t, device=x0.device)

    def wide(latents: torch.Tensor) -> torch.Tensor:
        return latents.to(device=x0.device, dtype=torch.float64)

    def spectrum(latents: torch.Tensor) -> torch.Tensor:     # (B*N, C, H, W) -> (B, C, N, H, W), FFT over N, H, W
        video = latents.reshape(rows // frames, frames, channels, height, width)
        return torch.fft.fftn(video.transpose(1, 2), dim=(-3, -2, -1))

    mixed = (mask * spectrum(wide(x0) + sigma * wide(initial_noise))
             + (1 - mask) * spectrum(sigma * wide(fresh_noise)))
    video = torch.fft.ifftn(mixed, dim=(-3, -2, -1)).real.transpose(1, 2)
    return video.reshape(rows, channels, height, width).to(x0.dtype)


def fresh_noise(seeds: Sequence[int], iteration: int, shape: Sequence[int], dtype=torch.float32,
                stream: int = 0) -> torch.Tensor:
    """(len(seeds), *shape) unit noise for FreeInit pass `iteration` (1, 2, ...): row k from its own CPU
    generator seeded with a mix of seeds[k] (the frame's seed, seed + i), the iteration and the stream
    (0: the high band's noise, 1: the low band's with freeinit_renoise "fresh"), so a frame's fresh noise
    does not depend on the animation's length, differs between passes and streams and does not repeat the
    frame's initial or ancestral noise (drawn from seed + i itself)."""
    if iteration < 1:
        raise AnimLongError(f"FreeInit: pass {iteration} has no fresh noise; passes after the first count from 1.")
    noise = torch.empty((len(seeds),) + tuple(shape), dtype=torch.float32)
    for k, seed in enumerate(seeds):
        mixed = (int(seed) * 0x9E3779B97F4A7C15 + iteration * 0xBF58476D1CE4E5B9 + stream * 0x94D049BB133111EB
                 ) % (2 ** 63)
        noise[k] = torch.randn(tuple(shape), generator=torch.Generator("cpu").manual_seed(mixed))
    return noise.to(dtype)
