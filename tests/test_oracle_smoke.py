"""The oracle benchmark's world and figures (benchmarks/oracle_world.py), on tiny sizes."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

from lib_animlong.context import Window  # noqa: E402
from lib_animlong.motion.call import CallSlot, MotionCall  # noqa: E402
from oracle_run import initial_noise, run  # noqa: E402
from oracle_world import PosteriorMeanModel, covariance, figures  # noqa: E402

N, VIDEOS, CONTEXT = 24, 8, 8


def test_posterior_mean_uses_own_frames_and_references_seen_this_step():
    slot = CallSlot()
    model = PosteriorMeanModel(N, False, slot)
    x = torch.randn(2 * N, 32, 1, 1, dtype=torch.float64)
    sigma = torch.full((2 * N,), 2.0, dtype=torch.float64)
    rows = lambda frames: torch.tensor([v * N + f for v in range(2) for f in frames])  # noqa: E731
    first, second = (0, 1, 2, 3), (4, 5, 6)
    with slot.use(MotionCall(frames=4, frame_indices=first)):
        model(x[rows(first)], sigma[rows(first)])
    with slot.use(MotionCall(frames=3, frame_indices=second, reference_frames=(2, 3))):
        out = model(x[rows(second)], sigma[rows(second)])
    k = covariance(N)
    seen = [4, 5, 6, 2, 3]
    gain = k[second, :][:, seen] @ torch.linalg.inv(k[seen, :][:, seen] + 4.0 * torch.eye(5, dtype=k.dtype))
    expected = torch.einsum("fs,vsc->vfc", gain, x.view(2, N, 32)[:, seen])
    assert torch.allclose(out.view(2, 3, 32), expected)
    with slot.use(MotionCall(frames=3, frame_indices=second, reference_frames=(20,))):
        with pytest.raises(AssertionError, match="20"):
            model(x[rows(second)], sigma[rows(second)])


def test_one_window_over_every_frame_is_the_full_denoiser():
    noise = initial_noise(N, VIDEOS, 32, seed=0)
    full, cost_full = run(None, N, False, noise)
    whole, cost = run(lambda step: [Window(tuple(range(N)), (1.0,) * N)], N, False, noise)
    assert torch.equal(whole, full) and cost == cost_full == 1.0
    f = figures(whole, full, N, CONTEXT, cost)
    assert f.coherence == 1.0 and f.cov_error == 0.0
    assert f.seam == pytest.approx(1.0, abs=0.15)


def test_independent_chunks_lose_coherence_and_show_seams():
    noise = initial_noise(N, VIDEOS, 32, seed=0)
    full, _ = run(None, N, False, noise)
    chunks = [Window(tuple(range(s, s + CONTEXT)), (1.0,) * CONTEXT) for s in range(0, N, CONTEXT)]
    result, cost = run(lambda step: chunks, N, False, noise)
    f = figures(result, full, N, CONTEXT, cost)
    assert cost == 1.0 and f.seam > 3 and f.coherence < 0.3 and f.cov_error > 0.2


def _chunks(start):
    return [Window(tuple(range(s, s + CONTEXT)), (1.0,) * CONTEXT) for s in range(start, N, CONTEXT)]


def test_two_branch_run_is_one_branch_when_the_fusion_keeps_only_one_and_counts_both_branches():
    from oracle_run import run_branched
    noise = initial_noise(N, VIDEOS, 32, seed=0)
    whole = [Window(tuple(range(N)), (1.0,) * N)]
    full, _ = run(None, N, False, noise)
    local, local_cost = run(lambda step: _chunks(0), N, False, noise)
    only_local, cost = run_branched(lambda step: whole, lambda step: _chunks(0), lambda step: None, N, noise)
    assert torch.equal(only_local, local) and cost == local_cost
    only_global, cost = run_branched(lambda step: whole, lambda step: _chunks(0), lambda step: "global", N, noise)
    assert torch.allclose(only_global, full) and cost == 1.0
    # both branches every step, the global one kept: the full result at twice the rows
    kept, cost = run_branched(lambda step: whole, lambda step: _chunks(0), lambda step: (lambda g, l, s: g),
                              N, noise)
    assert torch.allclose(kept, full) and cost == 2.0


def test_low_pass_keeps_constants_and_splits_a_signal_into_parts_that_sum_back():
    from oracle_grid import low_pass
    constant = torch.ones(3 * N, 4, 1, 1, dtype=torch.float64) * torch.arange(4.0).view(1, 4, 1, 1)
    assert torch.allclose(low_pass(constant, N, 3.0), constant)
    x = torch.randn(3 * N, 4, 1, 1, dtype=torch.float64)
    low = low_pass(x, N, 3.0)
    assert torch.allclose(low + (x - low), x)
    # it smooths: the frame-to-frame differences of the low part are smaller, and videos do not mix
    step = lambda y: (y.view(3, N, 4)[:, 1:] - y.view(3, N, 4)[:, :-1]).pow(2).mean()  # noqa: E731
    assert step(low) < step(x) / 4
    x2 = x.clone()
    x2.view(3, N, 4)[1] += 100
    assert torch.allclose(low_pass(x2, N, 3.0).view(3, N, 4)[0], low.view(3, N, 4)[0])
