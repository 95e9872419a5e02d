"""Temporal reference buffers: frames computed by one window, attended to read-only by later windows.

One `ReferenceBuffers` lives for one model evaluation (one denoising step's pass over all windows), so it
is cleared every step by construction, and the windowed denoiser releases frames no later window reads as
it goes. In every temporal attention layer it keeps the LayerNorm'd inputs (before positional encoding) of
the frames later windows reference, and only those: memory is O(referenced frames in flight). The
sequences axis of those inputs is (videos * h * w), so cond blocks and videos are kept apart for free as
long as every call of the evaluation has the same blocks, which the windowed denoiser guarantees.

Positions of references (`reference_positions`), with R references and a window of F frames:
  unique  references take positions 0..R-1 in the order the window lists them, the window's frames
          R..R+F-1; needs R + F <= the positional table.
  window  true temporal distances: the window's frames keep 0..F-1 as fed, a reference r sits at
          p(f) + (r - f) where f is the window frame nearest to r; everything is then shifted so the
          smallest position is 0. Needs the resulting span <= the table.
  none    references carry no positional encoding; the window's frames keep 0..F-1.
"""
from typing import Dict, Iterable, List, Sequence, Tuple

import torch

from .errors import AnimLongError
from .options import REFERENCE_POSITIONS


class ReferenceBuffers:
    def __init__(self, needed: Iterable[int], positions: str = "unique"):
        if positions not in REFERENCE_POSITIONS:
            raise AnimLongError(f"Option 'reference_positions' must be one of {', '.join(REFERENCE_POSITIONS)}; "
                                f"got {positions!r}.")
        self.needed = frozenset(needed)
        self.positions = positions
        self.kept: Dict[str, Dict[int, torch.Tensor]] = {}

    def retain(self, needed: Iterable[int]) -> None:
        """From now on keep only `needed` frames; buffered frames outside it are released."""
        self.needed = frozenset(needed)
        for layer in self.kept.values():
            for frame in [f for f in layer if f not in self.needed]:
                del layer[frame]

    def kept_frames(self) -> int:
        """Frame features held, summed over layers."""
        return sum(len(frames) for frames in self.kept.values())

    def extend(self, key: str, normed: torch.Tensor, pe: torch.Tensor, call) -> Tuple[torch.Tensor, torch.Tensor]:
        """normed: (sequences, F, C); pe: (P, C). Returns (q_in, kv_in) with positions applied."""
        indices = tuple(call.frame_indices)
        self._keep(key, normed, indices)
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

    def _keep(self, key: str, normed: torch.Tensor, indices: Sequence[int]) -> None:
        layer = self.kept.setdefault(key, {})
        for position, frame in enumerate(indices):
            if frame in self.needed:
                layer[frame] = normed[:, position].clone()  # a clone: a view would keep the whole window alive

    def _stacked(self, key: str, references: Sequence[int], normed: torch.Tensor) -> torch.Tensor:
        layer = self.kept.get(key, {})
        missing = [r for r in references if r not in layer]
        if missing:
            raise AnimLongError(
                f"A window references frames {missing[:8]} that no earlier window of this step computed. "
                "References must point to frames computed earlier in the same step; report this plan.")
        seen = torch.stack([layer[r] for r in references], dim=1)
        if seen.shape[0] != normed.shape[0]:
            raise AnimLongError(
                f"Reference frames were kept for {seen.shape[0]} sequences but this call has {normed.shape[0]}; "
                "every call of one step must have the same videos and size.")
        return seen

    def _layout(self, indices: Sequence[int], references: Sequence[int]) -> Tuple[List[int], List[int]]:
        """Positions of the window's frames and of its references, the smallest being 0."""
        if self.positions == "unique":
            count = len(references)
            return list(range(count, count + len(indices))), list(range(count))
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
