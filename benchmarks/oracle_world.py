"""The oracle world of ../shared/docs/oracle.md: a Gaussian video prior whose exact denoiser is known.

`Prior` holds the frame covariance; `PosteriorMeanModel` is a drop-in for the UNet: a k-diffusion model
function over the rows of one call that returns the exact posterior mean of those frames given what the
window may see (its own noisy rows and the references named by the `MotionCall` on the slot). `figures`
compares a result with the full-sequence denoiser's.
"""
import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch

from lib_animlong.motion.call import CallSlot

SHARED = 0.5          # a: the component every frame shares (the subject's identity)
TIME_SCALE = 6.0      # l: motion time scale, in frames
JITTER = 1e-4
CHANNELS = 32         # D


def covariance(n: int, loop: bool = False, shared: float = None, time_scale: float = None) -> torch.Tensor:
    """K(i, j) = a + (1 - a) k(i - j) (+ jitter on the diagonal); k periodic in the loop world.

    shared (a) and time_scale (l) default to SHARED and TIME_SCALE; a larger a or l is a world of stronger
    long-range correlation."""
    a = SHARED if shared is None else shared
    scale = TIME_SCALE if time_scale is None else time_scale
    i = torch.arange(n, dtype=torch.float64)
    lag = i[:, None] - i[None, :]
    if loop:
        periodic_scale = 2 * math.pi * scale / n
        local = torch.exp(-2 * torch.sin(math.pi * lag / n) ** 2 / periodic_scale ** 2)
    else:
        local = torch.exp(-lag ** 2 / (2 * scale ** 2))
    return a + (1 - a) * local + JITTER * torch.eye(n, dtype=torch.float64)


def sample_prior(n: int, videos: int, loop: bool, generator: torch.Generator) -> torch.Tensor:
    """Clean videos from the prior, rows laid out as (videos x frames, channels, 1, 1)."""
    chol = torch.linalg.cholesky(covariance(n, loop))
    z = torch.randn(videos, n, CHANNELS, generator=generator, dtype=torch.float64)
    return torch.einsum("ij,vjc->vic", chol, z).reshape(videos * n, CHANNELS, 1, 1)


class PosteriorMeanModel:
    """D(x_S, s)_F = K[F, S] (K[S, S] + diag(s_S^2))^-1 x_S for the frames F of the call in flight.

    S is the call's own frames plus its reference frames. A reference must have been pushed earlier in
    the same step (asserted; `new_step` starts a step); its noisy value and noise level are the ones the
    step saw. With no MotionCall on the slot the
    call is the full-sequence denoiser (rows = videos x all frames). Counts the rows pushed.
    """

    def __init__(self, n: int, loop: bool, slot: CallSlot, clip: Optional[Sequence[int]] = None,
                 world: Optional[dict] = None):
        """clip: the absolute frames a clip of a multi-pass run is made of (default: all n). world: the
        `covariance` keywords (shared, time_scale) of another world than the default one."""
        kernel = covariance(n, loop, **(world or {}))
        if clip is not None:
            kernel, n = kernel[list(clip)][:, list(clip)], len(clip)
        self.n, self.kernel, self.slot = n, kernel, slot
        self.rows_pushed = 0
        self.calls = 0
        self._seen: Dict[int, Tuple[torch.Tensor, float]] = {}  # frame -> (x of every video, its sigma)

    def new_step(self) -> None:
        """A new evaluation of the whole video begins: frames seen before are no longer references."""
        self._seen = {}

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **kwargs) -> torch.Tensor:
        call = self.slot.current
        frames = list(call.frame_indices) if call is not None else list(range(self.n))
        references = list(call.reference_frames) if call is not None else []
        videos = x.shape[0] // len(frames)
        assert videos * len(frames) == x.shape[0], "rows are not videos x frames"
        self.rows_pushed += x.shape[0]
        self.calls += 1

        own = x.reshape(videos, len(frames), -1)
        own_sigma = sigma.reshape(videos, len(frames))[0]
        for k, f in enumerate(frames):
            self._seen[f] = (own[:, k], float(own_sigma[k]))

        extra = [r for r in references if r not in set(frames)]
        missing = [r for r in extra if r not in self._seen]
        assert not missing, f"references {missing} were not computed earlier in this step"
        seen = frames + extra
        x_seen = torch.cat([own] + [self._seen[r][0][:, None] for r in extra], dim=1).double()
        noise = torch.cat([own_sigma.double(), torch.tensor([self._seen[r][1] for r in extra],
                                                             dtype=torch.float64)])
        k_ss = self.kernel[seen][:, seen] + torch.diag(noise ** 2)
        k_fs = self.kernel[frames][:, seen]
        gain = torch.linalg.solve(k_ss, k_fs.T).T          # K[F,S] (K[S,S] + s^2)^-1 (symmetric)
        out = torch.einsum("fs,vsc->vfc", gain, x_seen)
        return out.reshape(x.shape).to(x.dtype)


@dataclass(frozen=True)
class Figures:
    seam: float
    coherence: float
    cov_error: float
    loop_seam: float
    cost: float
    variance: float = float("nan")   # mean marginal variance over the full denoiser's (1: as sharp)


def frame_covariance(x: torch.Tensor, n: int) -> torch.Tensor:
    """N x N second moments over videos and channels (the prior has zero mean)."""
    samples = x.reshape(-1, n, x.shape[1]).permute(1, 0, 2).reshape(n, -1).double()
    return samples @ samples.T / samples.shape[1]


def _adjacent(c: torch.Tensor) -> torch.Tensor:
    d = torch.diagonal(c)
    return d[1:] + d[:-1] - 2 * torch.diagonal(c, 1)


def _far_correlation(c: torch.Tensor, distance: int) -> float:
    d = torch.sqrt(torch.diagonal(c))
    corr = c / (d[:, None] * d[None, :])
    i = torch.arange(c.shape[0])
    far = (i[:, None] - i[None, :]).abs() >= distance
    return float(corr[far].mean()) if bool(far.any()) else float("nan")


def figures(result: torch.Tensor, full: torch.Tensor, n: int, context_length: int, cost: float) -> Figures:
    return covariance_figures(frame_covariance(result, n), frame_covariance(full, n), context_length, cost)


def covariance_figures(c: torch.Tensor, c_full: torch.Tensor, context_length: int, cost: float) -> Figures:
    """The figures of a frame covariance `c` against a reference one (the full denoiser's samples', or the
    prior's own covariance)."""
    full_adjacent = float(_adjacent(c_full).mean())
    loop_pair = float(c[0, 0] + c[-1, -1] - 2 * c[0, -1])
    return Figures(
        seam=float(_adjacent(c).max()) / full_adjacent,
        coherence=_far_correlation(c, 2 * context_length) / _far_correlation(c_full, 2 * context_length),
        cov_error=float(torch.linalg.norm(c - c_full) / torch.linalg.norm(c_full)),
        loop_seam=loop_pair / full_adjacent,
        cost=cost,
        variance=float(torch.diagonal(c).mean() / torch.diagonal(c_full).mean()))
