"""Temporal reference buffers: frames computed by one window, attended to read-only by later windows.

One `ReferenceBuffers` lives for one model evaluation (one denoising step's pass over all windows), so it
is cleared every step by construction, and the windowed denoiser releases frames no later window reads as
it goes. In every temporal attention layer it keeps the LayerNorm'd inputs (before positional encoding) of
the frames later windows reference, and only those: memory is O(referenced frames in flight). The
sequences axis of those inputs is (videos * h * w), so cond blocks and videos are kept apart for free as
long as every call of the evaluation has the same blocks, which the windowed denoiser guarantees.

Each layer keeps its frames in one tensor of `capacity` slots, allocated once per evaluation; a released
frame's slot is reused. Frames cloned one by one (tens of KB each, living for different stretches of the
step) would be scattered through the allocator's heap among the activations, which pins far more memory
than is alive: with glibc's default malloc, a local step of 1024 frames peaked 232 MiB above its baseline
that way against 79 MiB with slots, for 33 MiB of frames held (benchmarks/bench_perf.py).

Positions of references (`reference_positions`), with R references and a window of F frames:
  unique  references take positions 0..R-1 in the order the window lists them, the window's frames
          R..R+F-1; needs R + F <= the positional table.
  window  true temporal distances: the window's frames keep 0..F-1 as fed, a reference r sits at
          p(f) + (r - f) where f is the window frame nearest to r; everything is then shifted so the
          smallest position is 0. Needs the resulting span <= the table. In a closed loop of N frames
          (`loop_frames`) the loop is first cut open at the largest gap between the frames in use, so frame N-1
          sits just before frame 0 when both are used.
  none    references carry no positional encoding; the window's frames keep 0..F-1.
"""
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import torch

from .errors import AnimLongError
from .options import REFERENCE_POSITIONS


class ReferenceBuffers:
    def __init__(self, needed: Iterable[int], positions: str = "unique", capacity: Optional[int] = None,
                 loop_frames: Optional[int] = None):
        """capacity: the most frames held at once (default: every needed frame). loop_frames: the frame
        count N of a closed loop, whose temporal distances wrap round (None: not looped)."""
        if positions not in REFERENCE_POSITIONS:
            raise AnimLongError(f"Option 'reference_positions' must be one of {', '.join(REFERENCE_POSITIONS)}; "
                                f"got {positions!r}.")
        self.needed = frozenset(needed)
        self.positions = positions
        self.loop_frames = loop_frames
        self.capacity = len(self.needed) if capacity is None else capacity
        self.kept: Dict[str, Set[int]] = {}          # layer -> frames it holds
        self.slabs: Dict[str, torch.Tensor] = {}     # layer -> (sequences, capacity, C)
        self.slots: Dict[int, int] = {}              # frame -> its slot, the same in every layer
        self.free = list(range(self.capacity))[::-1]

    def retain(self, needed: Iterable[int]) -> None:
        """From now on keep only `needed` frames; buffered frames outside it are released."""
        self.needed = frozenset(needed)
        for frame in [f for f in self.slots if f not in self.needed]:
            self.free.append(self.slots.pop(frame))
        for layer in self.kept.values():
            layer.intersection_update(self.needed)

    def kept_frames(self) -> int:
        """Frame features held, summed over layers."""
        return sum(len(frames) for frames in self.kept.values())

    def extend(self, key: str, normed: torch.Tensor, pe: torch.Tensor, call,
               store_dtype: Optional[torch.dtype] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """normed: (sequences, F, C); pe: (P, C). Returns (q_in, kv_in) with positions applied.
        store_dtype: the precision kept frames are held in (default normed's); the attention's projections
        pass their weights' dtype when it is narrower, e.g. fp16 weights under autocast, whose LayerNorm
        output is fp32: the projections would round the features to fp16 anyway, and the buffers halve."""
        indices = tuple(call.frame_indices)
        self._keep(key, normed, indices, store_dtype or normed.dtype)
        own = set(indices)
        references = [r for r in call.reference_frames if r not in own]
        frames, table = normed.shape[1], pe.shape[0]
        if not references:
            _fits(frames, table, "a window")
            q_in = kv_in = normed + pe[:frames]
            return q_in, kv_in
        seen = self._stacked(key, references, normed)
        if self.positions == "none":
            _fits(frames, table, "a window")
            q_in = normed + pe[:frames]
            return q_in, torch.cat([seen, q_in], dim=1)
        current, referenced = self._layout(indices, references)
        span = max(current + referenced) + 1
        if span > table:
            raise AnimLongError(
                f"With reference_positions={self.positions!r}, a window of {frames} frames and "
                f"{len(references)} reference frames needs {span} positions, but the motion module's "
                f"positional table has {table}. Lower the context length or the number of references, or "
                "set reference_positions to 'none'.")
        q_in = normed + pe[current]
        return q_in, torch.cat([seen + pe[referenced], q_in], dim=1)

    def _keep(self, key: str, normed: torch.Tensor, indices: Sequence[int], dtype: torch.dtype) -> None:
        kept = [(position, frame) for position, frame in enumerate(indices) if frame in self.needed]
        if not kept:
            return
        if key not in self.slabs:
            self.slabs[key] = normed.new_empty((normed.shape[0], self.capacity, normed.shape[2]), dtype=dtype)
        slab = self._slab(key, normed)
        layer = self.kept.setdefault(key, set())
        for position, frame in kept:
            slab[:, self._slot(frame)] = normed[:, position]
            layer.add(frame)

    def _slot(self, frame: int) -> int:
        if frame not in self.slots:
            if not self.free:
                raise AnimLongError(f"The reference buffers were sized for {self.capacity} frames at once and this "
                                    "plan holds more; report this plan.")
            self.slots[frame] = self.free.pop()
        return self.slots[frame]

    def _slab(self, key: str, normed: torch.Tensor) -> torch.Tensor:
        slab = self.slabs[key]
        if slab.shape[0] != normed.shape[0]:
            raise AnimLongError(
                f"Reference frames were kept for {slab.shape[0]} sequences but this call has {normed.shape[0]}; "
                "every call of one step must have the same videos and size.")
        return slab

    def _stacked(self, key: str, references: Sequence[int], normed: torch.Tensor) -> torch.Tensor:
        layer = self.kept.get(key, set())
        missing = [r for r in references if r not in layer]
        if missing:
            raise AnimLongError(
                f"A window references frames {missing[:8]} that no earlier window of this step computed. "
                "References must point to frames computed earlier in the same step; report this plan.")
        slab = self._slab(key, normed)
        slots = torch.tensor([self.slots[r] for r in references], dtype=torch.long, device=slab.device)
        return slab.index_select(1, slots).to(normed.dtype)

    def _layout(self, indices: Sequence[int], references: Sequence[int]) -> Tuple[List[int], List[int]]:
        """Positions of the window's frames and of its references, the smallest being 0."""
        if self.positions == "unique":
            count = len(references)
            return list(range(count, count + len(indices))), list(range(count))
        if self.loop_frames:      # unroll the loop where it has its largest gap between the frames used
            n, used = self.loop_frames, sorted(set(indices) | set(references))
            gaps = [(used[(k + 1) % len(used)] - used[k]) % n or n for k in range(len(used))]
            start = used[(gaps.index(max(gaps)) + 1) % len(used)]
            indices = [(f - start) % n for f in indices]
            references = [(r - start) % n for r in references]
        current = list(range(len(indices)))
        referenced = []
        for r in references:
            nearest = min(range(len(indices)), key=lambda i: abs(r - indices[i]))
            referenced.append(nearest + r - indices[nearest])
        lowest = min(current + referenced)
        return [p - lowest for p in current], [p - lowest for p in referenced]


def _fits(frames: int, table: int, what: str) -> None:
    if frames > table:
        raise AnimLongError(
            f"{what.capitalize()} of {frames} frames is longer than this motion module's positional table "
            f"({table} frames). Lower the context length to {table} or less.")
