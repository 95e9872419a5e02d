"""A recipe: the full description of a schedule, from which `build` lays out the windows of one step.

`plan` turns user options into a recipe; benchmarks/search_schedules.py builds recipes directly to explore
what the options do not expose. `build` is a pure function of (step, frame count, window length, recipe).
"""
from dataclasses import dataclass, replace
from typing import Dict, List, Sequence, Tuple

from . import layouts
from .phase import phase
from .weights import LAST_WINS_FACTOR, fuse_weights
from .window import Window

# Weight of frames a window computes only to serve as references: their output barely counts.
REFERENCE_ONLY = 1e-8


@dataclass(frozen=True)
class Recipe:
    layout: str = "anchored"     # anchored | overlap | uniform | shifted | dilated | strided
    loop: bool = False
    overlap: int = 4             # overlap, uniform
    stride: int = 4              # strided (FreeNoise)
    fuse: str = "pyramid"        # flat | pyramid | gaussian | last (last window wins)
    phase_law: str = "golden"    # how boundaries move from step to step
    levels: int = 3              # dilated: dilations 1, 2, 4, ... cycled over the steps
    own: int = 0                 # frames a shifted/anchored window outputs (0: the context length)
    anchor_stride: int = 0       # global anchors every this-many frames, computed first (0: none)
    previous_refs: int = 0       # references to the nearest frames of the window computed just before
    anchor_refs: int = 0         # references to the nearest anchors, all from the one window that computed them
    global_steps: int = 0        # the first (noisiest) steps use combs spanning the whole video
    comb_links: str = "chain"    # combs look at the comb before them (chain) or at the first one (hub)
    shift_combs: bool = True     # the first comb's residue moves with the step's phase
    comb_levels: bool = False    # hub combs narrow to every 4th, 2nd frame over the global steps
    alternate: bool = True       # windows run left to right on even steps, right to left on odd ones
    keyframes: Tuple[int, ...] = ()  # frames pinned clean by an earlier pass: the anchors, never recomputed
    spectral_steps: int = 0      # the first steps also compute a low-frequency hub window (see `_spectral`)


def build(step: int, n: int, length: int, recipe: Recipe) -> List[Window]:
    """The windows of one step, in the order they must be computed.

    Every plan it returns has these properties (tests/test_context.py checks them over every schedule):
    every frame is output (weight > 0) by some ordinary window (low_pass 0); with `spectral_steps`, the
    first steps begin with one low-frequency window (low_pass > 0); every window sees min(n, length)
    frames, its own plus its references, because a motion module trained on clips of `length` frames should never see a
    shorter clip; a window references only frames computed earlier in the step; and without `loop` no
    window's frames run from the last frame to the first.
    """
    windows = _filled(_build(step, n, length, recipe), n, length, recipe)
    return ([_spectral(n, length)] if step < recipe.spectral_steps and n > length else []) + windows


def _spectral(n: int, length: int) -> Window:
    """The low-frequency hub window: `length` frames spread evenly over the video, one call, no references,
    computed first. Its Gaussian low-pass (Window.low_pass) is as wide as the spacing of its frames (n /
    length), the slowest temporal frequencies a window of spread frames can tell apart; the ordinary
    windows keep every faster one. Its outputs are never fused with weights (they are flat, unused)."""
    return Window(tuple(layouts.spread(length, n)), (1.0,) * length, low_pass=n / length)


def _build(step: int, n: int, length: int, recipe: Recipe) -> List[Window]:
    at = phase(recipe.phase_law, step)
    if n <= length:
        return [_whole(n, recipe, at)]
    reverse = recipe.alternate and recipe.previous_refs > 0 and step % 2 == 1
    if step < recipe.global_steps:
        return _global(step, n, length, recipe, at, reverse)
    # pinned keyframes are known: the hub shows them, no other window outputs them again
    body = _body(step, n, length, recipe, at, set(recipe.keyframes))
    travel = body[::-1] if reverse else body
    anchors = list(recipe.keyframes) or _anchors(n, length, recipe, at)
    if not anchors:
        return _assemble([(travel, None)], [()] * len(travel), n, length, recipe)
    along = _along(travel, n, reverse, recipe.loop)
    runs = _anchor_runs(anchors, along, length, recipe.anchor_refs // 2 if recipe.loop else 0, reverse)
    hub = [tuple(run[::-1] if reverse else run) for run in runs]   # each in time order (round a loop's join)
    pools = _anchor_pools(travel, runs, along, recipe.anchor_refs, recipe.loop)
    return _assemble([(hub, REFERENCE_ONLY), (travel, None)], pools, n, length, recipe)


def _global(step: int, n: int, length: int, recipe: Recipe, at: float, reverse: bool) -> List[Window]:
    """The noisiest steps: windows spanning the whole video (combs of every d-th frame)."""
    widest = -(-n // length)
    combs = layouts.combs(n, widest, at if recipe.shift_combs else 0.0)
    if not (recipe.previous_refs or recipe.anchor_refs):
        return _assemble([(combs, 1.0)], [], n, length, recipe)
    budget = recipe.previous_refs + recipe.anchor_refs   # reference frames a window may attend to
    if recipe.comb_links == "chain":    # each comb looks at the one before it
        return _assemble([(combs[::-1] if reverse else combs, 1.0)], [], n, length,
                         replace(recipe, previous_refs=budget if recipe.previous_refs else 0))
    # hub: the first comb is computed first and every other window looks at it; with `comb_levels` the
    # other windows narrow from combs to every 2nd frame over the global steps (coarse to fine)
    hub = tuple(layouts.spread(length, n))   # exactly `length` frames: the module sees a full clip
    dilation = widest
    if recipe.comb_levels:
        halvings = max(1, (widest - 1).bit_length() - 1)
        dilation = max(2, widest >> (step * (halvings + 1) // recipe.global_steps))
    taken = set(hub)
    rest = [f for f in range(n) if f not in taken]
    others = [window for r in range(dilation)
              for window in layouts.chunks([f for f in rest if f % dilation == r], length, 0, recipe.loop)]
    return _assemble([([hub], 1.0), (others, None)], [hub] * len(others), n, length,
                     replace(recipe, previous_refs=0, anchor_refs=budget, fuse="flat"))


def _whole(n: int, recipe: Recipe, at: float) -> Window:
    """One window sees every frame; looped, its first frame rotates so no frame pair is always the edge."""
    start = round(at * n) if recipe.loop else 0
    return Window(tuple((start + i) % n for i in range(n)), (1.0,) * n)


def _anchors(n: int, length: int, recipe: Recipe, at: float) -> List[int]:
    """Anchors every `anchor_stride` frames, rounded up to whole anchor windows of `length` frames (so an
    anchor window, which reads nothing, still sees a full clip), spread evenly and moved by the phase."""
    stride = recipe.anchor_stride
    if not stride:
        return []
    windows = -(-(-(-n // stride)) // length)        # ceil(ceil(n / stride) / length) anchor windows
    count = min(n, windows * length)
    shift = round(at * (n // count))
    return sorted({(f + shift) % n for f in layouts.spread(count, n)})


def _body(step: int, n: int, length: int, recipe: Recipe, at: float, skip) -> List[Tuple[int, ...]]:
    kind, loop = recipe.layout, recipe.loop
    if kind in ("anchored", "shifted"):
        own = min(recipe.own or length, length)
        return layouts.chunks([f for f in range(n) if f not in skip], own, round(at * own), loop)
    if skip:
        kept = [tuple(f for f in window if f not in skip) for window in _body(step, n, length, recipe, at, ())]
        return [window for window in kept if window]
    if kind == "overlap":
        return layouts.overlapping(n, length, recipe.overlap, loop)
    if kind == "uniform":
        return layouts.uniform(n, length, recipe.overlap, at, loop)
    if kind == "dilated":
        dilation = 2 ** (step % recipe.levels)
        while dilation > 1 and dilation * length > n:
            dilation //= 2
        return layouts.dilated(n, length, dilation, round(at * length), loop)
    if kind == "strided":
        return layouts.strided(n, length, recipe.stride, loop)
    raise ValueError(f"unknown layout {kind!r}")


def _distance(a: int, b: int, n: int, loop: bool) -> int:
    d = abs(a - b)
    return min(d, n - d) if loop else d


def _nearest(candidates: Sequence[int], frames: Sequence[int], count: int, n: int, loop: bool) -> List[int]:
    """The `count` candidates (not in `frames`) closest in time to any of `frames`."""
    own = set(frames)
    ranked = sorted((min(_distance(c, f, n, loop) for f in frames), c) for c in set(candidates) - own)
    return [c for _, c in ranked[:max(0, count)]]


def _assemble(groups, pools: Sequence[Sequence[int]], n: int, length: int, recipe: Recipe) -> List[Window]:
    """Windows in computation order with their references and weights.

    groups: (windows, weight) in order; weight None means the recipe's fusion weights. pools: the anchors
    each window of weight None may read, one per such window in order (the other windows read no anchors)."""
    windows, pool = [], iter(pools)
    for frames_list, weight in groups:
        previous = None  # a window's "previous" is its neighbour in its own group, never an anchor chunk
        for frames in frames_list:
            budget = 2 * length - len(frames)
            references = _nearest(previous or (), frames, min(recipe.previous_refs, budget), n, recipe.loop)
            if weight is None:    # anchors are computed before the body windows
                references += _nearest(set(next(pool)) - set(references), frames,
                                       min(recipe.anchor_refs, budget - len(references)), n, recipe.loop)
            windows.append((frames, weight, tuple(sorted(references))))
            previous = frames
    return _weighted(windows, recipe)


def _along(travel: Sequence[Sequence[int]], n: int, reverse: bool, loop: bool):
    """How far along the body's travel a frame lies (looped, round the circle from where it starts)."""
    if not loop:
        return (lambda f: n - 1 - f) if reverse else (lambda f: f)
    start = travel[0][-1] if reverse else travel[0][0]
    return lambda f: ((start - f) if reverse else (f - start)) % n


def _anchor_runs(anchors: Sequence[int], along, length: int, behind: int, reverse: bool) -> List[List[int]]:
    """The anchors cut into anchor windows of `length`, each in the order the body reaches them, the short
    one last. Looped, the first also takes the `behind` anchors just before the body's start, across the
    join, so the first body window sees both sides of it (the last ones read them too, _anchor_pools)."""
    if len(anchors) <= length:
        return [sorted(anchors, reverse=reverse)]
    ordered = sorted(anchors, key=along)
    if behind:
        ordered = ordered[-behind:] + ordered[:-behind]
    return [ordered[i:i + length] for i in range(0, len(ordered), length)]


def _anchor_pools(travel: Sequence[Sequence[int]], runs: Sequence[Sequence[int]], along, count: int,
                  loop: bool) -> List[List[int]]:
    """The anchors each body window may read: those of the first anchor window (in the body's order)
    whose last anchor it has not reached, and of the one before when that is the last, short one.
    Looped, the windows reading the last anchor window also read the first, across the join.

    One anchor window at a time, so the reference buffers hold one anchor window's frames however long
    the video (see _just_in_time). The one ahead, so a window at the edge of an anchor window's stretch
    still sees the side not computed yet (the window before it shows the other side).
    """
    pools, current = [], 0
    for frames in travel:
        reach = max(along(f) for f in frames)
        while current + 1 < len(runs) and along(runs[current][-1]) <= reach:
            current += 1
        pool = list(runs[current])
        if len(pool) < count and current > 0:
            pool += runs[current - 1]
        if loop and current == len(runs) - 1 > 0:
            pool += runs[0]
        pools.append(pool)
    return pools


def _weighted(windows, recipe: Recipe) -> List[Window]:
    last: Dict[int, int] = {}
    for index, (frames, _, _) in enumerate(windows):
        for f in frames:
            last[f] = index
    result = []
    for index, (frames, weight, references) in enumerate(windows):
        if weight is not None:
            weights = (weight,) * len(frames)
        elif recipe.fuse == "last":
            weights = tuple(1.0 if last[f] == index else LAST_WINS_FACTOR for f in frames)
        else:
            weights = fuse_weights(recipe.fuse, len(frames))
        result.append(Window(tuple(frames), weights, references))
    return _just_in_time(result)


def _filled(windows: List[Window], n: int, length: int, recipe: Recipe) -> List[Window]:
    """Each window that sees fewer than min(n, length) frames topped up to that many, in order.

    First with references to the nearest frames computed earlier in the step (when the recipe has
    references at all), then with the frames that continue its own progression (the next frames of its
    comb, or its neighbours) computed only to be seen: their output weight is REFERENCE_ONLY, so the
    fused values are the other windows'. A short window appears where a layout cuts a run at the video's
    edge or round the anchors (shifted, dilated), or where a comb or an anchor window has fewer frames
    than the window length.
    """
    need = min(n, length)
    may_refer = bool(recipe.previous_refs or recipe.anchor_refs or recipe.keyframes)
    computed, result = set(), []
    for window in windows:
        seen = set(window.frames) | set(window.references)
        references = list(window.references)
        if len(seen) < need and may_refer:
            extra = _nearest(computed - seen, window.frames, need - len(seen), n, recipe.loop)
            references = sorted(references + extra)
            seen.update(extra)
        if len(seen) < need:
            added = _continuation(window.frames, seen, need - len(seen), n, recipe.loop)
            weight = dict(zip(window.frames, window.weights))
            weight.update((f, REFERENCE_ONLY) for f in added)
            frames = _time_order(list(weight), n, recipe.loop)
            window = Window(frames, tuple(weight[f] for f in frames), tuple(references))
        elif references != list(window.references):
            window = Window(window.frames, window.weights, tuple(references))
        result.append(window)
        computed.update(window.frames)
    return result


def _continuation(frames: Sequence[int], seen: set, count: int, n: int, loop: bool) -> List[int]:
    """`count` frames not in `seen` that continue `frames` on both sides with its own spacing (a comb's
    next teeth), nearest first; then, if the video's edge comes first, the nearest frames of any spacing."""
    ordered = _time_order(frames, n, loop)
    gaps = {(b - a) % n if loop else b - a for a, b in zip(ordered, ordered[1:])}
    step = gaps.pop() if len(gaps) == 1 else 1
    added: List[int] = []
    for k in range(1, n + 1):
        for f in (ordered[-1] + k * step, ordered[0] - k * step):
            f = f % n if loop else f
            if 0 <= f < n and f not in seen and f not in added and len(added) < count:
                added.append(f)
    if len(added) < count:
        added += _nearest(set(range(n)) - seen - set(added), frames, count - len(added), n, loop)
    return added


def _time_order(frames: Sequence[int], n: int, loop: bool) -> Tuple[int, ...]:
    """Frames in time order; looped, round the circle starting after the widest gap between them."""
    ordered = sorted(frames)
    if not loop or len(ordered) < 2:
        return tuple(ordered)
    gaps = [((ordered[(i + 1) % len(ordered)] - f) % n, i) for i, f in enumerate(ordered)]
    widest = max(gaps)[1]
    return tuple(ordered[widest + 1:] + ordered[:widest + 1])


def _just_in_time(windows: List[Window]) -> List[Window]:
    """Windows computed only to be looked at (anchors) move to just before their first reader.

    Nothing a window sees changes (same frames, same references, providers keep their order), but the
    reference buffers then hold one anchor window's frames (the one the body is reading, _anchor_pools)
    instead of all N / stride anchors.
    """
    providers = [w for w in windows if max(w.weights) <= REFERENCE_ONLY]
    if not providers:
        return windows
    ordered, pending = [], providers
    for window in windows:
        if max(window.weights) <= REFERENCE_ONLY:
            continue
        read = set(window.references)
        last = max((i for i, p in enumerate(pending) if read & set(p.frames)), default=-1)
        ordered += pending[:last + 1] + [window]
        pending = pending[last + 1:]
    return ordered + pending
