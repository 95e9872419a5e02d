"""plan(step, total_steps, num_frames, options): the windows of one denoising step, from the user's options."""
from typing import List, Tuple

from ..conditioning.pinning import keyframe_indices, keyframe_stride
from ..errors import AnimLongError
from ..options import AnimationOptions
from .recipe import Recipe, build
from .window import Window

_LAYOUTS = {"anchored-shift": "anchored", "overlap": "overlap", "uniform": "uniform", "shifted": "shifted",
            "dilated": "dilated", "freenoise": "strided"}
FREENOISE_STRIDE = 4


def plan(step: int, total_steps: int, num_frames: int, options: AnimationOptions) -> List[Window]:
    """Windows in the order they must be computed; a window references only frames computed before it.

    Pure: the same arguments give the same plan. Every frame is output by at least one window, and no
    window attends to more than 2 x context_length frames (its own plus its references).
    """
    _check(step, total_steps, num_frames, options)
    length = min(options.context_length, num_frames)
    return build(step, num_frames, length, recipe_for(options, num_frames, total_steps))


class PlanCache:
    """context.plan memoised per (step, total_steps, num_frames): each step's windows are planned once per
    render or webui sampling pass, not once per model call (two-evaluation samplers call the model twice a
    step). Pure apart from the memo: the same plans as `plan`."""

    def __init__(self, options: AnimationOptions):
        self.options, self.plans = options, {}

    def __call__(self, step: int, total_steps: int, num_frames: int, options: AnimationOptions):
        if options is not self.options and options != self.options:
            return plan(step, total_steps, num_frames, options)
        key = (step, total_steps, num_frames)
        if key not in self.plans:
            self.plans[key] = plan(step, total_steps, num_frames, options)
        return self.plans[key]

    def prepare(self, total_steps: int, num_frames: int) -> None:
        """Plan every step now: a plan that cannot be made is refused before any sampling."""
        for step in range(total_steps):
            self(step, total_steps, num_frames, self.options)


def recipe_for(options: AnimationOptions, num_frames: int, total_steps: int) -> Recipe:
    """The recipe the options describe, for a video of `num_frames` frames."""
    length = min(options.context_length, num_frames)
    layout = _LAYOUTS[options.schedule]
    keyframes = _pinned_keyframes(options, num_frames)
    previous = options.references in ("previous", "previous+anchors")
    anchors = options.references in ("anchors", "previous+anchors") or bool(keyframes)
    budget = min(options.reference_budget or length, length)  # at most as many again as its own frames
    previous_refs = (budget // 4 if anchors else budget) if previous else 0
    anchored = layout == "anchored" and not keyframes    # pinned keyframes already hold the whole video
    return Recipe(
        layout=layout, loop=options.closed_loop, overlap=overlap_for(options), stride=FREENOISE_STRIDE,
        fuse=options.fuse_weights, phase_law=options.phase_law, own=length,
        anchor_stride=(options.anchor_stride or length) if anchors else 0,
        previous_refs=previous_refs, anchor_refs=budget - previous_refs if anchors else 0,
        global_steps=round(options.global_steps * total_steps) if anchored else 0,
        comb_links="hub", shift_combs=False, comb_levels=True, keyframes=keyframes,
        spectral_steps=round(options.spectral_steps * total_steps))


def _pinned_keyframes(options: AnimationOptions, num_frames: int) -> Tuple[int, ...]:
    """Keyframes first, second pass: the keyframes are pinned clean, every window may look at them."""
    if not options.keyframes_first or num_frames != options.frames or options.pin_mode != "clean":
        return ()
    return tuple(keyframe_indices(num_frames, keyframe_stride(options)))


def overlap_for(options: AnimationOptions) -> int:
    """The overlap (frames) the windows use: the default (4) becomes a quarter of a context length too short
    for it (context 4 -> 1), so the default works at every context length; a chosen overlap is kept as is
    (and refused by _check when it does not fit)."""
    default = AnimationOptions.__dataclass_fields__["overlap"].default
    if options.overlap == default and options.overlap >= options.context_length:
        return options.context_length // 4
    return options.overlap


def _check(step: int, total_steps: int, num_frames: int, options: AnimationOptions) -> None:
    if num_frames < 1:
        raise AnimLongError(f"Option 'frames' must be at least 1 to plan windows; got {num_frames}.")
    if not 0 <= step < max(total_steps, 1):
        raise AnimLongError(f"Denoising step {step} is outside 0..{total_steps - 1}; the sampler and the "
                            "window plan disagree on the number of steps.")
    if options.schedule in ("overlap", "uniform") and overlap_for(options) >= options.context_length:
        raise AnimLongError(f"Option 'overlap' ({options.overlap}) must be smaller than 'context_length' "
                            f"({options.context_length}); lower the overlap.")
