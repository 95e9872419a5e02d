"""A window: the frames one model call outputs, their fusion weights, and what it may look at."""
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class Window:
    frames: Tuple[int, ...]            # absolute frame indices this window outputs, in the order fed
    weights: Tuple[float, ...]         # fusion weight of each output frame (> 0)
    references: Tuple[int, ...] = ()   # frames computed earlier in the same step whose buffered features
    #                                    this window attends to, read-only
    low_pass: float = 0.0              # > 0: a low-frequency window (below), in frames; 0: an ordinary one

    # A low-frequency window's outputs are not fused with the weights. Once the ordinary windows of the step
    # are fused, the denoiser adds to every frame f of each video sum_h g(f, h) (y_h - fused_h) over this
    # window's frames h, g the Gaussian weights exp(-(f - h)^2 / (2 low_pass^2)) normalised over h: the
    # fused result's temporal frequencies below ~1 / low_pass become this window's, the higher ones stay
    # the ordinary windows'. (Spectral blending of a global and a local branch, FreeLong: Lu et al. 2024,
    # arXiv:2407.19918, done on the window outputs with one global window instead of in attention.)

    def __post_init__(self):
        if len(self.frames) != len(self.weights):
            raise ValueError(f"window has {len(self.frames)} frames but {len(self.weights)} weights")
        if not self.low_pass >= 0 or self.low_pass == float("inf"):
            raise ValueError(f"window low_pass must be a finite number of frames >= 0; got {self.low_pass}")

    @property
    def role(self) -> str:
        """'low-frequency' for a low-frequency window, '' otherwise (summary.window_role tells the rest)."""
        return "low-frequency" if self.low_pass > 0 else ""
