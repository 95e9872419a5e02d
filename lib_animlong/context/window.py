"""A window: the frames one model call outputs, their fusion weights, and what it may look at."""
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class Window:
    frames: Tuple[int, ...]            # absolute frame indices this window outputs, in the order fed
    weights: Tuple[float, ...]         # fusion weight of each output frame (> 0)
    references: Tuple[int, ...] = ()   # frames computed earlier in the same step whose buffered features
    #                                    this window attends to, read-only

    def __post_init__(self):
        if len(self.frames) != len(self.weights):
            raise ValueError(f"window has {len(self.frames)} frames but {len(self.weights)} weights")
