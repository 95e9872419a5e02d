"""The windowed denoiser: one k-diffusion model evaluation of a long video as a series of short windows.

Which frame of which video each row of `x` holds is told by a `RowMap` (rows.py): the webui's CFG
layout (AND parts interleaved, then uncond) or, headless, V videos of N frames one after the other (the
default when no map is passed). For each window of the step's plan the rows of every track are gathered
together, with every tensor argument whose first dim is the row count; the model runs with a `MotionCall`
set on the injection's slot, and each track's own rows are fused into one preallocated result by a running
weighted average. A call the map cannot serve is refused with a message. Activations and copies are
O(window); only the output tensor is O(N).
"""
import math
from typing import Any, Callable, List, Optional, Sequence

import torch

from ..context.window import Window
from ..errors import AnimLongError
from ..motion.call import CallSlot, MotionCall
from ..options import AnimationOptions
from ..reference import ReferenceBuffers
from .rows import RowMap

Planner = Callable[[int, int, int, AnimationOptions], List[Window]]


def default_planner() -> Planner:
    try:
        from ..context import plan
    except ImportError as error:
        raise AnimLongError("lib_animlong.context.plan is not available; pass a planner to the windowed "
                            "denoiser.") from error
    return plan


class WindowedDenoiser:
    """Wraps `model(x, sigma, **kwargs)`; call it like the model, optionally with `step=`.

    The step index comes from `step=` when the caller knows it (a `StepClock` fed by the sampler's callback,
    steps.py), otherwise from sigma: the nearest entry of `sigmas` in log space, which is wrong for the
    second evaluation of Heun's steps (it lands on the next step's sigma): pass `step=` for two-stage samplers.
    The plan of a step is made once and reused by every evaluation of that step.

    `row_map=` (a RowMap) says which (track, frame) each row of `x` holds; without it `x` must be whole
    blocks of N frames. `between_windows()`, when given, runs before every window call after the first
    (the webui raises its InterruptedException there when Interrupt / Skip was pressed).
    """

    def __init__(self, model: Callable[..., torch.Tensor], slot: CallSlot, options: AnimationOptions, *,
                 num_frames: Optional[int] = None, planner: Optional[Planner] = None,
                 sigmas: Optional[torch.Tensor] = None, total_steps: Optional[int] = None,
                 pins=None, between_windows: Optional[Callable[[], None]] = None):
        self.model = model
        self.between_windows = between_windows
        self._plans = {}
        self.slot = slot
        self.options = options
        self.num_frames = options.frames if num_frames is None else num_frames
        self.planner = planner if planner is not None else default_planner()
        self.log_sigmas = None
        if sigmas is not None:
            sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
            self.log_sigmas = sigmas[sigmas > 0].log()
        if total_steps is None and sigmas is not None:
            total_steps = len(self.log_sigmas)
        if total_steps is None:
            raise AnimLongError("The windowed denoiser needs the sampler's sigmas or total_steps to plan windows.")
        self.total_steps = total_steps
        self.pins = pins

    def step_of(self, sigma) -> int:
        if self.log_sigmas is None:
            raise AnimLongError("The windowed denoiser was built without sigmas; pass step= on every call.")
        value = float(torch.as_tensor(sigma).flatten()[0])
        return int((self.log_sigmas - math.log(max(value, 1e-12))).abs().argmin())

    def windows(self, step: int) -> List[Window]:
        """The plan of `step`, made once per step."""
        if step not in self._plans:
            windows = self.planner(step, self.total_steps, self.num_frames, self.options)
            _check_windows(windows, self.num_frames)
            self._plans[step] = windows
        return self._plans[step]

    def __call__(self, x: torch.Tensor, sigma, step: Optional[int] = None, row_map: Optional[RowMap] = None,
                 **kwargs) -> torch.Tensor:
        n = self.num_frames
        rows = x.shape[0]
        if row_map is None:
            if rows % n:
                raise AnimLongError(
                    f"The model was called with {rows} rows, which is not a whole number of {n}-frame blocks. "
                    "Another extension may be changing the batch while long animation is on; disable it.")
            row_map = RowMap.blocks(rows // n, n)
        if row_map.rows != rows or row_map.frames != n:
            raise AnimLongError(f"AnimLong: a model call of {rows} rows came with a row map of {row_map.rows} rows "
                                f"for {row_map.frames} frames (the animation has {n}); it cannot be mapped.")
        step = self.step_of(sigma) if step is None else step
        windows = self.windows(step)
        if self.pins is not None:
            x, sigma = self.pins.apply_input(x, sigma, step, self.total_steps, n, rows_of=row_map.rows_of_frame)
        out = self._evaluate(x, sigma, windows, kwargs, row_map)
        if self.pins is not None:
            out = self.pins.apply_output(out, step, self.total_steps, n, rows_of=row_map.rows_of_frame)
        return out

    def _evaluate(self, x, sigma, windows: Sequence[Window], kwargs, row_map: RowMap) -> torch.Tensor:
        n = self.num_frames
        if len(windows) == 1 and windows[0].frames == tuple(range(n)) and not windows[0].references:
            rows, own = row_map.gather([windows[0].frames])
            if rows == list(range(x.shape[0])) and all(own):     # the call is already whole videos in order
                with self.slot.use(self._call(windows, None)):
                    return self.model(x, sigma, **kwargs)
        low = [w for w in windows if w.low_pass > 0]
        windows = [w for w in windows if w.low_pass == 0]
        needed = _referenced_later(windows)
        groups = _groups(windows, needed, self.options.frames_per_call)
        keeps = _keep_sets(groups, needed, _live_references(windows))
        buffers = ReferenceBuffers(needed, self.options.reference_positions, capacity=_most_held(groups, keeps),
                                   loop_frames=n if self.options.closed_loop else None) if needed else None
        groups, keeps = [[w] for w in low] + groups, [None] * len(low) + keeps   # low-frequency windows first
        out = None
        weight_sums = torch.zeros(x.shape[0], dtype=torch.float64)
        low_outputs = []
        for k, (group, keep) in enumerate(zip(groups, keeps)):
            order, own = row_map.gather([w.frames for w in group])
            if not any(own):
                continue      # no track has a row of these frames in this call (a chunk of the webui's)
            if k and self.between_windows is not None:
                self.between_windows()
            rows = torch.tensor(order, dtype=torch.long, device=x.device)
            if keep is not None:
                buffers.retain(keep)  # frames no window from here on reads are dropped
            call = self._call(group, buffers if keep is not None else None)
            with self.slot.use(call):
                y = self.model(x.index_select(0, rows), _take(sigma, rows, x.shape[0]),
                               **_take(kwargs, rows, x.shape[0]))
            if out is None:
                out = torch.zeros((x.shape[0],) + tuple(y.shape[1:]), dtype=y.dtype, device=y.device)
            if group[0].low_pass > 0:
                low_outputs.append((group[0], y, order, own))
            else:
                _fuse(out, weight_sums, y, group, order, own)
        missing = set((weight_sums == 0).nonzero().flatten().tolist())
        if missing:
            frames = sorted({f for track in row_map.tracks for f, row in enumerate(track) if row in missing})
            raise AnimLongError(f"The window plan left frames {frames[:8]} uncovered at this step; "
                                "choose another schedule or report this plan.")
        for window, y, order, own in low_outputs:
            _low_frequencies(out, window, y, order, own, row_map, self.options.closed_loop)
        return out

    def _call(self, group: Sequence[Window], buffers) -> MotionCall:
        if len(group) == 1:
            return MotionCall(frames=len(group[0].frames), frame_indices=group[0].frames,
                              reference_frames=group[0].references, motion_scale=self.options.motion_scale,
                              reference=buffers)
        # several independent windows as several "videos": no single frame_indices describes them
        return MotionCall(frames=len(group[0].frames), frame_indices=None, reference_frames=(),
                          motion_scale=self.options.motion_scale, reference=None)


def _low_frequencies(out: torch.Tensor, window: Window, y: torch.Tensor, order: Sequence[int],
                     own: Sequence[bool], row_map: RowMap, loop: bool) -> None:
    """A low-frequency window's correction (Window.low_pass), in place on the fused `out`, per track.

    y's rows follow `order` (track-major, then the window's frames); borrowed rows (own False) and frames a
    track has no row for are left out of the Gaussian weights; looped, time distances wrap round."""
    n, length = row_map.frames, len(window.frames)
    frames = torch.arange(n, dtype=torch.float64)
    for t, track in enumerate(row_map.tracks):
        have = [k for k in range(length) if own[t * length + k]]
        targets = [f for f in range(n) if track[f] is not None]
        if not have or not targets:
            continue
        hub = torch.tensor([window.frames[k] for k in have], dtype=torch.float64)
        lag = (frames[targets][:, None] - hub[None, :]).abs()
        if loop:
            lag = torch.minimum(lag, n - lag)
        gains = torch.exp(-lag ** 2 / (2 * window.low_pass ** 2))
        gains = gains / gains.sum(1, keepdim=True)
        hub_rows = torch.tensor([track[window.frames[k]] for k in have], dtype=torch.long, device=out.device)
        picks = torch.tensor([t * length + k for k in have], dtype=torch.long, device=y.device)
        residual = (y.index_select(0, picks) - out.index_select(0, hub_rows)).flatten(1)
        correction = gains.to(device=out.device, dtype=torch.float64) @ residual.double()
        rows = torch.tensor([track[f] for f in targets], dtype=torch.long, device=out.device)
        out.index_add_(0, rows, correction.to(out.dtype).view((len(targets),) + tuple(out.shape[1:])))


def _check_windows(windows: Sequence[Window], n: int) -> None:
    if not windows:
        raise AnimLongError("The window plan is empty; choose another schedule.")
    for window in windows:
        if not window.frames or any(f < 0 or f >= n for f in window.frames + window.references):
            raise AnimLongError(f"A window names frames outside 0..{n - 1}: {window.frames[:8]}...")
        if any(not (w > 0) or math.isinf(w) for w in window.weights):
            raise AnimLongError("A window has a fusion weight that is not positive and finite.")
    computed = set()
    for window in windows:
        if window.low_pass > 0 and window.references:
            raise AnimLongError("A low-frequency window references other frames; it must see only its own. "
                                "Report this plan.")
        early = set(window.references) - computed - set(window.frames)
        if early:
            raise AnimLongError(
                f"A window references frames {sorted(early)[:8]} that no earlier window of this step computed. "
                "References must point to frames computed earlier in the same step; report this plan.")
        if window.low_pass == 0:
            computed.update(window.frames)


def _referenced_later(windows: Sequence[Window]) -> set:
    """Frames some window references that an earlier window computes."""
    needed = set()
    for k, window in enumerate(windows):
        for earlier in windows[:k]:
            needed.update(set(window.references) & set(earlier.frames))
    return needed


def _live_references(windows: Sequence[Window]) -> List[frozenset]:
    """For each window, the frames it or any later window references."""
    live, seen = [], frozenset()
    for window in reversed(windows):
        seen = seen.union(window.references)
        live.append(seen)
    return live[::-1]


def _keep_sets(groups: Sequence[Sequence[Window]], needed: set, live: Sequence[frozenset]) -> List[Optional[set]]:
    """For each call, the frames the reference buffers keep from then on; None where it uses no buffers."""
    keeps, first = [], 0
    for group in groups:
        uses = any(w.references for w in group) or any(f in needed for w in group for f in w.frames)
        keeps.append(needed & live[first] if needed and uses else None)
        first += len(group)
    return keeps


def _most_held(groups: Sequence[Sequence[Window]], keeps: Sequence[Optional[set]]) -> int:
    """The most frames the reference buffers hold at once over the step: the slots they need."""
    held, most = set(), 0
    for group, keep in zip(groups, keeps):
        if keep is not None:
            held = (held & keep) | {f for w in group for f in w.frames if f in keep}
            most = max(most, len(held))
    return most


def _groups(windows: Sequence[Window], needed: set, frames_per_call: int) -> List[List[Window]]:
    """Consecutive independent windows of one length share a call, up to `frames_per_call` frames."""
    groups: List[List[Window]] = []
    for window in windows:
        independent = not window.references and not needed.intersection(window.frames)
        if groups and independent and _independent(groups[-1], needed) and \
                len(groups[-1][0].frames) == len(window.frames) and \
                (len(groups[-1]) + 1) * len(window.frames) <= frames_per_call:
            groups[-1].append(window)
        else:
            groups.append([window])
    return groups


def _independent(group: Sequence[Window], needed: set) -> bool:
    return all(not w.references and not needed.intersection(w.frames) for w in group)


def _take(value: Any, rows: torch.Tensor, count: int) -> Any:
    """Slice every tensor whose first dim is the row count, through dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        if value.dim() > 0 and value.shape[0] == count:
            return value.index_select(0, rows.to(value.device))
        return value
    if isinstance(value, dict):
        return {key: _take(item, rows, count) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_take(item, rows, count) for item in value)
    return value


def _fuse(out: torch.Tensor, weight_sums: torch.Tensor, y: torch.Tensor, group: Sequence[Window],
          order: Sequence[int], own: Sequence[bool]) -> None:
    """Running weighted average per row: out += (y - out) * w / (W + w); a row's first output is copied
    exactly. y's rows follow `order` (track-major, then window, then frame); rows borrowed from another
    track (own False) are not fused."""
    length = len(group[0].frames)
    per_track = len(group) * length
    for k, window in enumerate(group):
        picks, rows, weights = [], [], []
        for start in range(0, len(order), per_track):
            for i, weight in enumerate(window.weights):
                position = start + k * length + i
                if own[position]:
                    picks.append(position)
                    rows.append(order[position])
                    weights.append(weight)
        if not rows:
            continue
        index = torch.tensor(rows, dtype=torch.long)
        weights = torch.tensor(weights, dtype=torch.float64)
        totals = weight_sums[index] + weights
        weight_sums[index] = totals
        ratio = (weights / totals).to(y.dtype).to(y.device).view((len(rows),) + (1,) * (y.dim() - 1))
        index = index.to(y.device)
        current = out.index_select(0, index)
        fused = current + (y.index_select(0, torch.tensor(picks, dtype=torch.long, device=y.device)) - current) * ratio
        out.index_copy_(0, index, fused)
