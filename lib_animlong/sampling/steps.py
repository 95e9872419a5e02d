"""The sampler step of every model evaluation, told by the sampler itself.

k-diffusion's fixed-step samplers (crowsonkb/k-diffusion `sampling.py`) call `callback({'i': i, ...})`
right after the FIRST model evaluation of step i; two-stage samplers (Heun, DPM2, DPM2 a, DPM++ 2S a,
DPM++ SDE: the webui's `second_order` samplers) then evaluate once more for step i before step i + 1
starts. Heun's second evaluation is at sigma_{i+1}, the very sigma step i + 1 starts at, so no sigma rule
can tell them apart; the callback and the number of evaluations per step can:

    evaluation k (0-based) after callback(i):  step i  if k < stages - 1,  else step i + 1
    before the first callback:                 step 0

Every evaluation is checked against its step's sigma interval [sigma_{i+1}, sigma_i] (the first one may
lie above sigma_i: churn); an evaluation outside it is refused with a message, never guessed.
"""
from typing import Optional, Sequence

import torch

from ..errors import AnimLongError

_TOLERANCE = 1e-4   # relative: sigmas travel through float32 on the way to the model


class StepClock:
    """sigmas: the ladder the sampler runs (steps + 1 values, last usually 0); stages: model evaluations per
    step (1, or 2 for two-stage samplers); offset: index of sigmas[0] in the pass's full ladder (img2img and
    hires fix run a suffix of it), added to every step returned."""

    def __init__(self, sigmas: Sequence[float], stages: int = 1, offset: int = 0):
        self.sigmas = [float(s) for s in torch.as_tensor(sigmas, dtype=torch.float64).flatten()]
        if len(self.sigmas) < 2:
            raise AnimLongError("The sampler's sigma ladder has fewer than 2 values; it has no steps to plan.")
        if stages < 1:
            raise AnimLongError(f"Internal error: a sampler step has {stages} evaluations.")
        self.stages, self.offset = stages, offset
        self.last_callback: Optional[int] = None
        self.since_callback = 0

    @property
    def steps(self) -> int:
        return len(self.sigmas) - 1

    def on_callback(self, i: int) -> None:
        """The sampler's callback: step i's first evaluation is done."""
        self.last_callback, self.since_callback = int(i), 0

    def evaluation(self, sigma) -> int:
        """The step (in the full ladder) of the model evaluation about to run at `sigma`; call once per
        evaluation (one CFG denoiser call, whatever the chunks)."""
        value = float(torch.as_tensor(sigma).flatten()[0])
        if self.last_callback is None:
            local, first = 0, True
        elif self.since_callback < self.stages - 1:
            local, first = self.last_callback, False
        else:
            local, first = self.last_callback + 1, True
        self.since_callback += 1
        if local >= self.steps:
            raise AnimLongError(f"AnimLong: the sampler evaluated the model after its last step ({self.steps} steps "
                                "in its ladder); this sampler is not supported, choose Euler, DPM++ 2M or Heun.")
        high, low = self.sigmas[local], self.sigmas[local + 1]
        above = value > high * (1 + _TOLERANCE) + 1e-8
        if value < low * (1 - _TOLERANCE) - 1e-8 or (above and not first):
            raise AnimLongError(
                f"AnimLong: the sampler evaluated the model at sigma {value:.4g} during step {local + 1}, whose "
                f"interval is [{low:.4g}, {high:.4g}]; this sampler's steps cannot be mapped to window plans. "
                "Choose a k-diffusion sampler such as Euler, Euler a, DPM++ 2M or Heun.")
        return self.offset + local


def ladder_offset(full: Sequence[float], run: Sequence[float]) -> int:
    """Where the sigmas a sampler runs start in the pass's full ladder (img2img: a suffix of it).
    Refused when `run` is not a suffix of `full`."""
    full = torch.as_tensor(full, dtype=torch.float64).flatten()
    run = torch.as_tensor(run, dtype=torch.float64).flatten()
    offset = len(full) - len(run)
    if offset < 0 or not torch.allclose(full[offset:], run, rtol=_TOLERANCE, atol=1e-8):
        raise AnimLongError("AnimLong: the sampler runs a sigma ladder that is not a part of the one it computed "
                            "for this pass; another extension changed the schedule, which long animation cannot "
                            "plan windows for.")
    return offset
