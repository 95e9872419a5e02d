"""The low-frequency hub window (Window.low_pass, option spectral_steps): plan and denoiser properties."""
import pytest
import torch

from lib_animlong.context import Window, plan
from lib_animlong.errors import AnimLongError
from lib_animlong.motion.call import CallSlot
from lib_animlong.options import SCHEDULES, AnimationOptions
from lib_animlong.sampling import WindowedDenoiser
from lib_animlong.sampling.rows import RowMap

SIGMAS = torch.tensor([10.0, 4.0, 1.5, 0.5, 0.0])
N = 24
HUB = (0, 6, 12, 18)


def ordinary(frames):
    frames = tuple(frames)
    return Window(frames, tuple(float(min(i + 1, len(frames) - i)) for i in range(len(frames))))


def hub(scale=6.0):
    return Window(HUB, (1.0,) * len(HUB), low_pass=scale)


PLAN = [ordinary(range(0, 10)), ordinary(range(8, 18)), ordinary(range(14, 24))]


def run(windows, model, x, frames=N, **options):
    slot = CallSlot()
    denoiser = WindowedDenoiser(lambda x, sigma: model(x, slot.current), slot,
                                AnimationOptions(frames=frames, **options),
                                planner=lambda step, total, n, o: list(windows), sigmas=SIGMAS)
    return denoiser(x, torch.tensor(4.0))


def per_frame(values):
    """A model whose output for frame f is values[f] (whatever window computes it)."""
    def model(x, call):
        frames = torch.tensor(call.frame_indices)
        return values[frames].repeat(x.shape[0] // len(frames)).view(-1, 1).expand_as(x).clone()
    return model


def by_window(hub_values, other):
    """The hub window returns hub_values[k] for its k-th frame, every other window `other`'s value."""
    def model(x, call):
        if tuple(call.frame_indices) == HUB:
            return hub_values.repeat(x.shape[0] // len(HUB)).view(-1, 1).expand_as(x).clone()
        return per_frame(other)(x, call)
    return model


def test_a_hub_that_agrees_with_the_fused_result_changes_nothing():
    values = torch.randn(N).double()
    x = torch.zeros(2 * N, 3, dtype=torch.float64)
    plain = run(PLAN, per_frame(values), x)
    with_hub = run([hub()] + PLAN, per_frame(values), x)
    assert torch.allclose(with_hub, plain)


def test_a_constant_offset_at_the_hub_moves_every_frame_by_it_and_fast_changes_stay_the_windows():
    values = torch.sin(torch.arange(N).double() * 2.5)          # fast changes: the windows' own
    offset = 0.7
    x = torch.zeros(2 * N, 3, dtype=torch.float64)
    plain = run(PLAN, per_frame(values), x)
    out = run([hub()] + PLAN, by_window(values[list(HUB)] + offset, values), x)
    assert torch.allclose(out, plain + offset)
    # a hub disagreeing only at one frame corrects its neighbours most and far frames least
    spike = values[list(HUB)].clone()
    spike[1] += 1.0
    change = (run([hub()] + PLAN, by_window(spike, values), x) - plain)[:N, 0]
    assert abs(int(change.argmax()) - HUB[1]) <= 3 and change[HUB[1]] > 3 * change[N - 1] > 0


def test_the_hub_outputs_are_not_fused_and_frames_it_alone_covers_are_uncovered():
    values = torch.randn(N).double()
    x = torch.zeros(N, 1, dtype=torch.float64)
    with pytest.raises(AnimLongError, match="uncovered"):
        run([hub()] + PLAN[:2], per_frame(values), x)
    with pytest.raises(AnimLongError, match="no earlier window"):    # nothing may read the hub's frames
        run([hub(), Window(tuple(range(6)), (1.0,) * 6, references=(6,)), ordinary(range(6, 24))],
            per_frame(values), x)


def test_tracks_are_corrected_each_from_its_own_hub_rows():
    """CFG layout (cond rows interleaved, then uncond): a cond-only offset does not reach the uncond rows."""
    row_map = RowMap.cfg([1] * N)
    values = torch.randn(N).double()

    def model(x, call):
        out = per_frame(values)(x, call)
        if tuple(call.frame_indices) == HUB:
            out[:len(HUB)] += 1.0              # rows are track-major: the cond track's hub rows first
        return out
    slot = CallSlot()
    windows = [hub()] + PLAN
    denoiser = WindowedDenoiser(lambda x, sigma: model(x, slot.current), slot, AnimationOptions(frames=N),
                                planner=lambda step, total, n, o: list(windows), sigmas=SIGMAS)
    out = denoiser(torch.zeros(2 * N, 1, dtype=torch.float64), torch.tensor(4.0), row_map=row_map)
    base = values.view(-1, 1)
    assert torch.allclose(out[:N], base + 1.0) and torch.allclose(out[N:], base)


def test_looped_the_correction_wraps_round_the_join():
    values = torch.zeros(N).double()
    spike = torch.zeros(len(HUB)).double()
    spike[0] = 1.0                       # the hub disagrees at frame 0 only
    x = torch.zeros(N, 1, dtype=torch.float64)
    looped = run([hub()] + PLAN, by_window(spike, values), x, closed_loop=True)[:, 0]
    straight = run([hub()] + PLAN, by_window(spike, values), x)[:, 0]
    assert looped[N - 1] == pytest.approx(float(looped[1]))      # frame 23 is as near frame 0 as frame 1
    assert straight[N - 1] < straight[1] / 10


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_spectral_steps_put_one_hub_of_context_length_spread_frames_first_in_the_noisiest_steps(schedule):
    for frames, length in ((64, 16), (100, 16), (40, 8), (17, 16)):
        options = AnimationOptions(frames=frames, context_length=length, schedule=schedule, spectral_steps=0.5)
        for step in range(10):
            windows = plan(step, 10, frames, options)
            low = [w for w in windows if w.low_pass > 0]
            assert all(w.low_pass == 0 for w in windows[len(low):])          # the hub comes first
            covered = {f for w in windows if w.low_pass == 0 for f in w.frames}
            assert covered == set(range(frames))       # every frame is still output by an ordinary window
            if step >= 5 or frames <= length:
                assert not low
                continue
            assert len(low) == 1 and not low[0].references
            frames_of_hub = low[0].frames
            assert len(frames_of_hub) == length and len(set(frames_of_hub)) == length
            gaps = [b - a for a, b in zip(frames_of_hub, frames_of_hub[1:])]
            assert max(gaps) - min(gaps) <= 1 and frames_of_hub[-1] + gaps[-1] >= frames - 1   # spans it all
            assert low[0].low_pass == pytest.approx(frames / length)
        assert plan(0, 10, frames, options.replace(spectral_steps=0.0)) == \
            [w for w in plan(0, 10, frames, options) if w.low_pass == 0]


def test_a_bad_low_pass_is_refused():
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="low_pass"):
            Window((0, 1), (1.0, 1.0), low_pass=bad)


def test_spectral_steps_run_on_the_real_unet_with_the_webui_cfg_layout_and_change_the_result():
    """The engine's own plan (uniform windows + the hub) through the injected motion modules of a tiny SD1.5
    UNet, cond and uncond rows in one call as the webui lays them out."""
    from test_windowed import sample_on_unet

    def windowed(spectral):
        def make(inner, slot, sigmas):
            options = AnimationOptions(frames=8, context_length=4, spectral_steps=spectral)
            return WindowedDenoiser(inner, slot, options, planner=plan, sigmas=sigmas)
        return make

    with_hub, without = sample_on_unet(windowed(1.0), steps=2), sample_on_unet(windowed(0.0), steps=2)
    assert torch.isfinite(with_hub).all() and (with_hub - without).abs().max() > 1e-4
