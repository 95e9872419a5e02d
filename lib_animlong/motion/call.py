"""The explicit per-call context the injected motion modules read.

The window engine sets a `MotionCall` on the injection's `CallSlot` around each model call (try/finally).
With no call set, the motion modules pass their input through unchanged, so any other caller of the UNet
(another extension, any batch size) is untouched. Nothing here is module-level state.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional, Sequence


@dataclass
class MotionCall:
    frames: int                                   # frames per video in this call (rows = videos x frames)
    frame_indices: Optional[Sequence[int]] = None  # absolute frame index of each of those frames
    reference_frames: Sequence[int] = ()          # frames (absolute) this window may attend to, read-only
    motion_scale: float = 1.0                     # multiplies the temporal attention logits
    # Temporal reference buffers (lib_animlong.reference): an object with
    #   extend(key, normed, pe, call, store_dtype=None) -> (q_in, kv_in)
    # that stores this window's referenced frames and prepends buffered ones to keys/values.
    reference: Any = None


class CallSlot:
    """Holds the MotionCall of the model call in flight, shared by all modules of one injection."""

    def __init__(self):
        self.current: Optional[MotionCall] = None

    @contextmanager
    def use(self, call: MotionCall):
        previous, self.current = self.current, call
        try:
            yield call
        finally:
            self.current = previous
