"""Fusion weights of the frames of one window (all > 0; only ratios between windows matter)."""
import math
from typing import Tuple


def flat(length: int) -> Tuple[float, ...]:
    return (1.0,) * length


def pyramid(length: int) -> Tuple[float, ...]:
    """1, 2, ... up to the middle and back down: window edges count least."""
    return tuple(float(min(i + 1, length - i)) for i in range(length))


def gaussian(length: int) -> Tuple[float, ...]:
    centre, spread = (length - 1) / 2, max(length / 4, 0.5)
    return tuple(math.exp(-((i - centre) ** 2) / (2 * spread ** 2)) for i in range(length))


FUSE_WEIGHTS = {"flat": flat, "pyramid": pyramid, "gaussian": gaussian}

# Last window wins (the A1111 peer overwrites overlapping outputs): each window outweighs all earlier
# ones by this factor, so in float32 the fused value is the last window's output.
LAST_WINS_FACTOR = 1e-8


def fuse_weights(kind: str, length: int) -> Tuple[float, ...]:
    return FUSE_WEIGHTS[kind](length)
