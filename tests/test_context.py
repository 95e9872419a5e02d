import itertools

import pytest

from lib_animlong.context import Window, plan
from lib_animlong.context.phase import golden, van_der_corput
from lib_animlong.errors import AnimLongError
from lib_animlong.options import FUSE_WEIGHTS, REFERENCE_MODES, SCHEDULES, AnimationOptions

STEPS = 30
FRAME_COUNTS = (1, 3, 15, 16, 17, 40, 64, 100)


# The schedule most tests here look at, named explicitly: whatever options.py's default is.
ANCHORED = dict(schedule="anchored-shift", references="previous+anchors", global_steps=0.53,
                phase_law="van-der-corput")


def options(**changes):
    return AnimationOptions().replace(**{**ANCHORED, **changes})


def bare(**changes):
    return options(references="none", **changes)


def every_plan():
    """(options, frames, step) over every schedule, loop setting and reference mode at a few sizes."""
    for schedule, loop, references in itertools.product(SCHEDULES, (False, True), REFERENCE_MODES):
        for frames, length in ((1, 16), (3, 16), (17, 16), (40, 8), (64, 16), (100, 16)):
            o = options(schedule=schedule, closed_loop=loop, references=references, context_length=length)
            for step in (0, 1, 2, 13, 14, 29):
                yield o, frames, step


def test_every_frame_is_output_at_every_step_with_positive_weights():
    for o, n, step in every_plan():
        windows = plan(step, STEPS, n, o)
        covered = set()
        for w in windows:
            assert isinstance(w, Window) and w.frames
            assert all(weight > 0 for weight in w.weights), (o, n, step)
            assert len(set(w.frames)) == len(w.frames)
            covered.update(w.frames)
        assert covered == set(range(n)), (o.schedule, o.closed_loop, o.references, n, step)


def test_references_are_computed_earlier_in_the_step_and_fit_the_attention_budget():
    for o, n, step in every_plan():
        length = min(o.context_length, n)
        computed = set()
        for w in plan(step, STEPS, n, o):
            assert set(w.references) <= computed, (o.schedule, o.references, n, step, w)
            assert not set(w.references) & set(w.frames)
            assert len(w.frames) <= length
            assert len(w.frames) + len(w.references) <= 2 * o.context_length
            computed.update(w.frames)


PROPERTY_FRAME_COUNTS = (1, 2, 5, 8, 9, 15, 16, 17, 23, 31, 33, 47, 64, 65, 97, 127, 256, 300)


def property_grid():
    """(options, frames, total steps, step) over every schedule, loop, reference mode, context length and
    frame count, at every step of a short ladder (the hub/global-step boundary included) and a few of a
    long one."""
    for schedule, loop, references, length in itertools.product(SCHEDULES, (False, True), REFERENCE_MODES,
                                                                 (4, 8, 16)):
        o = options(schedule=schedule, closed_loop=loop, references=references, context_length=length,
                    overlap=min(4, length // 2))
        for n in PROPERTY_FRAME_COUNTS:
            for total, steps in ((8, range(8)), (30, (0, 14, 15, 16, 29))):
                for step in steps:
                    yield o, n, total, step


def describe(o, n, step, window=None):
    return (f"{o.schedule} loop={o.closed_loop} references={o.references} context={o.context_length} "
            f"N={n} step={step} window={window}")


def test_plan_properties_over_every_schedule_and_option():
    """Issue 9 item 8: (a) every frame output at every step; (b) every window sees min(N, context length)
    frames, its own plus its references; (c) without the loop no window runs from the last frame to the
    first; (d) references only to frames computed earlier in the step."""
    for o, n, total, step in property_grid():
        windows = plan(step, total, n, o)
        need = min(n, o.context_length)
        computed, output = set(), set()
        for w in windows:
            seen = set(w.frames) | set(w.references)
            assert len(seen) >= need, describe(o, n, step, w)                       # (b)
            assert set(w.references) <= computed, describe(o, n, step, w)            # (d)
            if not o.closed_loop and len(w.frames) > 1:                              # (c)
                assert all(b > a for a, b in zip(w.frames, w.frames[1:])), describe(o, n, step, w)
            output.update(f for f, weight in zip(w.frames, w.weights) if weight >= 1e-3)
            computed.update(w.frames)
        assert output == set(range(n)), describe(o, n, step)                           # (a)


def test_plans_with_pinned_keyframes_keep_the_properties():
    for n, loop, length in itertools.product((17, 64, 257), (False, True), (8, 16)):
        o = options(frames=n, context_length=length, keyframes_first=True, pin_mode="clean", closed_loop=loop)
        for step in (0, 15, 29):
            computed = set()
            for w in plan(step, STEPS, n, o):
                assert len(set(w.frames) | set(w.references)) >= min(n, length), describe(o, n, step, w)
                assert set(w.references) <= computed, describe(o, n, step, w)
                computed.update(w.frames)


def test_the_windows_the_issue_found_short_now_see_a_full_clip():
    for n in (17, 64):
        for w in plan(15, STEPS, n, options()):
            assert len(set(w.frames) | set(w.references)) >= 16, (n, w)


def test_plans_are_pure_functions_of_their_arguments():
    for schedule, law in itertools.product(SCHEDULES, ("golden", "van-der-corput", "random")):
        o = options(schedule=schedule, phase_law=law)
        first = [plan(step, STEPS, 64, o) for step in range(STEPS)]
        assert first == [plan(step, STEPS, 64, o) for step in range(STEPS)]
        if schedule in ("shifted", "anchored-shift"):
            assert len({tuple(ws) for ws in first}) > 3, "the windows never move"


def test_windows_wrap_only_with_closed_loop():
    def wraps(windows, n):
        return any(n - 1 in w.frames and 0 in w.frames and len(w.frames) < n for w in windows)

    for schedule in ("overlap", "shifted", "freenoise"):   # the peers' uniform schedule always wraps
        o = options(schedule=schedule, references="previous")
        looped = [plan(s, STEPS, 64, o.replace(closed_loop=True)) for s in range(STEPS)]
        straight = [plan(s, STEPS, 64, o) for s in range(STEPS)]
        assert any(wraps(ws, 64) for ws in looped), schedule
        assert not any(wraps(ws, 64) for ws in straight), schedule
        for ws in straight:
            assert all(list(w.frames) == list(range(w.frames[0], w.frames[-1] + 1)) for w in ws)


def test_anchored_loop_windows_see_across_the_end():
    o = options(closed_loop=True)
    seen = [set(w.frames) | set(w.references) for s in range(STEPS) for w in plan(s, STEPS, 64, o)
            if len(w.frames) < 64]
    assert any({0, 63} <= s and 1 in s and 62 in s for s in seen)


def test_short_videos_get_one_window():
    assert plan(0, STEPS, 1, options()) == [Window((0,), (1.0,))]
    windows = plan(5, STEPS, 12, options(context_length=16))
    assert len(windows) == 1 and sorted(windows[0].frames) == list(range(12))
    looped = {plan(s, STEPS, 12, options(closed_loop=True)).pop().frames[0] for s in range(STEPS)}
    assert len(looped) > 1, "a looped short video always puts the same frames at the window edges"


def test_static_overlap_windows_and_weights():
    windows = plan(0, STEPS, 40, bare(schedule="overlap", overlap=4, fuse_weights="pyramid"))
    assert [w.frames[0] for w in windows] == [0, 12, 24]
    assert windows[0].weights[:3] == (1.0, 2.0, 3.0) and windows[0].weights[-1] == 1.0
    gauss = plan(0, STEPS, 40, bare(schedule="overlap", fuse_weights="gaussian"))[0].weights
    assert gauss[7] > gauss[0] and gauss[0] == pytest.approx(gauss[-1])


def fused_source(windows, n):
    """Which window's output each frame ends up with, when window k outputs the value k."""
    total, weight = [0.0] * n, [0.0] * n
    for k, w in enumerate(windows):
        for f, wt in zip(w.frames, w.weights):
            total[f] += k * wt
            weight[f] += wt
    return [t / w for t, w in zip(total, weight)]


def test_last_window_wins():
    windows = plan(3, STEPS, 64, bare(schedule="uniform", fuse_weights="last", phase_law="van-der-corput"))
    last = {f: k for k, w in enumerate(windows) for f in w.frames}
    assert fused_source(windows, 64) == pytest.approx([last[f] for f in range(64)], abs=1e-6)


def test_uniform_schedule_wraps_only_when_looped():
    straight = plan(1, STEPS, 64, bare(schedule="uniform", overlap=4))
    looped = plan(1, STEPS, 64, bare(schedule="uniform", overlap=4, closed_loop=True))
    assert any(63 in w.frames and 0 in w.frames for w in looped)
    assert not any(63 in w.frames and 0 in w.frames for w in straight)
    starts = {w.frames[0] for w in straight}
    assert 0 in starts and 64 - 16 in starts
    # the grid of starts moves with the phase like the looped one (van der Corput, step 1: half the video)
    assert {s % 12 for s in starts} - {0, 64 - 16} == {(32 % 12)}


def test_uniform_schedule_moves_by_van_der_corput():
    o = bare(schedule="uniform", closed_loop=True, phase_law="van-der-corput")
    starts = [plan(step, STEPS, 64, o)[0].frames[0] for step in range(4)]
    assert starts == [0, 32, 16, 48]
    assert [van_der_corput(s) for s in range(5)] == [0, 0.5, 0.25, 0.75, 0.125]
    assert 0 <= golden(7) < 1


def test_freenoise_windows_start_every_four_frames():
    windows = plan(0, STEPS, 30, bare(schedule="freenoise"))
    assert [w.frames[0] for w in windows] == [0, 4, 8, 12, 14]
    assert all(len(w.frames) == 16 for w in windows)


def test_anchors_are_computed_first_and_referenced_by_every_later_window():
    windows = plan(20, STEPS, 64, options(references="anchors", schedule="shifted"))
    anchors = set(windows[0].frames)
    # one full anchor window (16 frames spread evenly, not the 4 of a 16-frame stride), only to be looked at
    assert len(anchors) == 16 and max(windows[0].weights) < 1e-6
    assert {b - a for a, b in zip(windows[0].frames, windows[0].frames[1:])} == {4}
    assert all(set(w.references) & anchors for w in windows[1:])


def test_previous_references_alternate_direction():
    o = options(schedule="shifted", references="previous")
    forward, backward = plan(2, STEPS, 64, o), plan(3, STEPS, 64, o)
    assert forward[0].frames[0] == 0 and backward[0].frames[-1] == 63
    assert all(max(w.references) < min(w.frames) for w in forward[1:])
    assert all(min(w.references) > max(w.frames) for w in backward[1:])


def test_dilated_levels_cycle():
    combs = [plan(s, STEPS, 64, options(schedule="dilated", references="none")) for s in range(3)]
    gaps = [w[0].frames[1] - w[0].frames[0] for w in combs]
    assert gaps == [1, 2, 4]


@pytest.mark.parametrize("changes, named", [
    (dict(schedule="overlap", overlap=16), "overlap"),
    (dict(schedule="uniform", overlap=20, context_length=8), "overlap"),
])
def test_bad_options_are_refused_naming_the_option(changes, named):
    with pytest.raises(AnimLongError, match=repr(named)):
        plan(0, STEPS, 64, options(**changes))


def test_bad_frame_counts_and_steps_are_refused():
    with pytest.raises(AnimLongError, match="'frames'"):
        plan(0, STEPS, 0, options())
    with pytest.raises(AnimLongError, match="step 30"):
        plan(30, STEPS, 64, options())
    with pytest.raises(AnimLongError, match="'fuse_weights'"):
        options(fuse_weights="median")
    assert "last" in FUSE_WEIGHTS


def test_keyframes_pinned_clean_are_shown_first_and_never_recomputed():
    o = options(frames=64, keyframes_first=True, pin_mode="clean", keyframe_stride=4)
    for step in (0, 20):
        windows = plan(step, STEPS, 64, o)
        keys = set(range(0, 64, 4))
        assert set(windows[0].frames) == keys
        assert all(not keys & set(w.frames) and keys & set(w.references) for w in windows[1:])
    first_pass = plan(3, STEPS, 16, o)          # the keyframes alone: one window
    assert first_pass == [Window(tuple(range(16)), (1.0,) * 16)]
    noised = plan(20, STEPS, 64, o.replace(pin_mode="noised"))
    assert set(noised[0].frames) != set(range(0, 64, 4))


def test_anchored_shift_spans_the_video_in_the_noisiest_steps_then_goes_local():
    def spans(step, o):
        return [max(w.frames) - min(w.frames) for w in plan(step, STEPS, 64, o) if max(w.weights) >= 1]

    o = options(frames=64, global_steps=0.5)
    assert all(max(spans(step, o)) > 32 for step in range(15))           # combs: every 4th, then 2nd frame
    assert all(max(spans(step, o)) < 16 for step in range(15, STEPS))    # shifted windows of 16
    hub = plan(0, STEPS, 64, o)[0].frames
    assert all(set(hub) & set(w.references) for w in plan(0, STEPS, 64, o)[1:])
    assert all(max(spans(step, o.replace(global_steps=0.0))) < 16 for step in range(STEPS))


def test_the_default_overlap_fits_short_context_lengths_and_a_chosen_one_is_refused():
    for schedule in ("overlap", "uniform"):
        for context in (2, 3, 4):
            options = AnimationOptions(frames=24, context_length=context, schedule=schedule)
            for step in range(STEPS):
                windows = plan(step, STEPS, 24, options)
                assert {f for w in windows for f in w.frames} == set(range(24))
                assert all(len(w.frames) <= context for w in windows)
        with pytest.raises(AnimLongError, match="'overlap' \\(6\\)"):
            plan(0, STEPS, 24, AnimationOptions(frames=24, context_length=4, overlap=6, schedule=schedule))
