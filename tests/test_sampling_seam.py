"""The engine's side of the seam: RowMap (which frame of which track each row holds) and StepClock (the
sampler's own step for every evaluation), with real k-diffusion samplers."""
import pytest
import torch

from lib_animlong import kdiffusion
from lib_animlong.context.window import Window
from lib_animlong.errors import AnimLongError
from lib_animlong.motion.call import CallSlot
from lib_animlong.options import AnimationOptions
from lib_animlong.sampling import WindowedDenoiser
from lib_animlong.sampling.rows import RowMap
from lib_animlong.sampling.steps import StepClock, ladder_offset


def window(frames):
    return Window(tuple(frames), (1.0,) * len(frames))


def test_cfg_row_map_follows_the_webuis_interleaved_and_layout():
    row_map = RowMap.cfg([2, 2, 2])          # 3 frames, 2 AND parts: (0,0) (0,1) (1,0) (1,1) (2,0) (2,1) | 0 1 2
    assert row_map.tracks == ((0, 2, 4), (1, 3, 5), (6, 7, 8))
    rows, own = row_map.gather([(1, 2)])
    assert rows == [2, 4, 3, 5, 7, 8] and all(own)
    travel = RowMap.cfg([1, 2, 2])           # AND only from frame 1 on
    rows, own = travel.gather([(0, 1)])
    assert rows == [0, 1, 0, 2, 5, 6] and own == [True, True, False, True, True, True]
    with pytest.raises(AnimLongError, match="frame 2 is missing"):
        RowMap.cfg([2, 2, 2]).slice(0, 3).gather([(1, 2)])


def test_windows_get_their_frames_for_every_part_and_rows_fuse_back_in_place():
    slot = CallSlot()
    seen = []

    def model(x, sigma, cond):
        seen.append((x.flatten().tolist(), cond.flatten().tolist()))
        return x * 10 + cond.view(-1, 1, 1, 1)

    repeats = [2, 2, 2, 2]
    row_map = RowMap.cfg(repeats)
    x = torch.tensor([f for f, n in enumerate(repeats) for _ in range(n)] + list(range(4)), dtype=torch.float32)
    cond = torch.tensor([p for n in repeats for p in range(n)] + [9] * 4, dtype=torch.float32)
    plan = [window((0, 1)), window((2, 3))]
    denoiser = WindowedDenoiser(model, slot, AnimationOptions(frames=4), planner=lambda *a: plan, total_steps=1)
    out = denoiser(x.view(-1, 1, 1, 1), torch.ones(12), step=0, row_map=row_map, cond=cond.view(-1, 1))
    assert seen[0] == ([0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 9, 9])
    assert seen[1] == ([2, 3, 2, 3, 2, 3], [0, 0, 1, 1, 9, 9])
    assert torch.equal(out.flatten(), x * 10 + cond)


SAMPLERS = {"sample_euler": 1, "sample_heun": 2, "sample_dpm_2": 2, "sample_dpmpp_2s_ancestral": 2,
            "sample_dpmpp_sde": 2, "sample_dpmpp_2m": 1}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_evaluation_of_a_step_uses_that_steps_plan_with_real_samplers(name):
    sampling, _ = kdiffusion.load()
    sigmas = sampling.get_sigmas_karras(5, 0.1, 10.0)
    clock = StepClock(sigmas, SAMPLERS[name])
    planned, used = [], []

    def planner(step, total, n, options):
        planned.append(step)
        return [window(range(n))]

    slot = CallSlot()
    denoiser = WindowedDenoiser(lambda x, sigma: x * 0.5, slot, AnimationOptions(frames=3), planner=planner,
                                total_steps=5)

    def model(x, sigma):
        step = clock.evaluation(sigma)
        used.append(step)
        return denoiser(x, sigma, step=step)

    x = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0)) * 10
    extra = {}
    if "noise_sampler" in sampling.__dict__[name].__code__.co_varnames:
        generator = torch.Generator().manual_seed(1)
        extra["noise_sampler"] = lambda s, t: torch.randn(x.shape, generator=generator)
    getattr(sampling, name)(model, x, sigmas, disable=True, callback=lambda d: clock.on_callback(d["i"]), **extra)
    stages = SAMPLERS[name]
    expected = [s for s in range(5) for _ in range(stages if s < 4 else 1)]   # the last step: one evaluation
    assert used == expected
    assert planned == list(range(5))      # one plan per step


def test_an_evaluation_outside_its_steps_sigma_interval_is_refused():
    clock = StepClock(torch.tensor([10.0, 4.0, 1.0, 0.0]), 1)
    clock.evaluation(10.0)
    clock.on_callback(0)
    with pytest.raises(AnimLongError, match="cannot be mapped"):
        clock.evaluation(0.5)             # step 1 lies in [1, 4]


def test_img2img_ladders_are_a_suffix_of_the_pass_ladder():
    full = torch.tensor([10.0, 4.0, 1.0, 0.0])
    assert ladder_offset(full, full[1:]) == 1
    with pytest.raises(AnimLongError, match="not a part"):
        ladder_offset(full, torch.tensor([5.0, 1.0, 0.0]))
