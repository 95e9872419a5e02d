"""Window layouts: which frames each window of a step outputs, as tuples of absolute frame indices.

Pure helpers over (frame count, window length, offsets). With `loop`, indices wrap modulo the frame count.
"""
import math
from typing import List, Sequence, Tuple

Frames = Tuple[int, ...]


def spread(count: int, total: int) -> List[int]:
    """`count` positions spread evenly over range(total), the first at 0."""
    return [(i * total) // count for i in range(count)]


def overlapping(n: int, length: int, overlap: int, loop: bool) -> List[Frames]:
    """Static windows `length` long sharing `overlap` frames; the last one ends on the last frame."""
    stride = length - overlap
    if loop:
        count = math.ceil(n / stride)
        return [tuple((start + i) % n for i in range(length)) for start in spread(count, n)]
    count = math.ceil((n - overlap) / stride)
    starts = [min(k * stride, n - length) for k in range(count)]
    return [tuple(range(start, start + length)) for start in starts]


def uniform(n: int, length: int, overlap: int, phase: float, loop: bool) -> List[Frames]:
    """The peers' uniform schedule: windows every `length - overlap` frames from `phase * n`.

    Looped, they run round the circle (the peers' layout). Without `loop` they stop at the video's ends:
    the same grid of starts, the first clamped to frame 0 and the last to end on the last frame (the peers
    wrap round the end even without a loop, joining the last frames to the first; this does not).
    """
    stride = length - overlap
    start = round(phase * n)
    if loop:
        count = math.ceil(n / stride)
        return [tuple((start + k * stride + i) % n for i in range(length)) for k in range(count)]
    first = start % stride
    starts = sorted({max(s, 0) for s in range(first - stride, n - length, stride)} | {n - length})
    return [tuple(range(s, s + length)) for s in starts]


def chunks(frames: Sequence[int], length: int, offset: int, loop: bool) -> List[Frames]:
    """Split an ordered frame list into runs of at most `length`, the first boundary at `offset`.

    Looped, the list is a circle: it is rotated by `offset` and cut into equal runs. Otherwise the
    frames before `offset` form a short first run and the rest is cut every `length`.
    """
    frames = list(frames)
    if not frames:
        return []
    if loop:
        offset %= len(frames)
        rotated = frames[offset:] + frames[:offset]
        count = math.ceil(len(rotated) / length)
        bounds = spread(count, len(rotated)) + [len(rotated)]
        return [tuple(rotated[a:b]) for a, b in zip(bounds, bounds[1:])]
    offset %= length
    bounds = sorted({0, *range(offset, len(frames), length), len(frames)})
    return [tuple(frames[a:b]) for a, b in zip(bounds, bounds[1:])]


def dilated(n: int, length: int, dilation: int, offset: int, loop: bool) -> List[Frames]:
    """Combs of every `dilation`-th frame, each cut into runs of `length` shifted by `offset`."""
    windows = []
    for residue in range(dilation):
        windows += chunks(range(residue, n, dilation), length, offset, loop)
    return windows


def combs(n: int, dilation: int, phase: float) -> List[Frames]:
    """Every `dilation`-th frame, one comb per residue, starting from the residue the phase picks."""
    first = round(phase * dilation)
    return [tuple(range((first + r) % dilation, n, dilation)) for r in range(dilation)]


def strided(n: int, length: int, stride: int, loop: bool) -> List[Frames]:
    """FreeNoise windows: `length` frames starting every `stride` frames; the last one ends on the last
    frame, or looped, they run round the circle."""
    if loop:
        return [tuple((s + i) % n for i in range(length)) for s in range(0, n, stride)]
    starts = sorted({*range(0, n - length + 1, stride), n - length})
    return [tuple(range(s, s + length)) for s in starts]
