"""Run one schedule in the oracle world through the real k-diffusion sampler and WindowedDenoiser."""
from typing import Callable, List, Optional

import torch
from einops import rearrange

from lib_animlong import kdiffusion
from lib_animlong.conditioning.pinning import keyframes_first
from lib_animlong.context import Window
from lib_animlong.freeinit import reinitialise
from lib_animlong.motion.call import CallSlot
from lib_animlong.options import AnimationOptions
from lib_animlong.sampling import WindowedDenoiser

from oracle_world import PosteriorMeanModel

STEPS, SIGMA_MIN, SIGMA_MAX, RHO = 30, 0.03, 14.6, 7.0
PlanForStep = Callable[[int], List[Window]]


def sigmas(steps: int = STEPS) -> torch.Tensor:
    sampling, _ = kdiffusion.load()
    return sampling.get_sigmas_karras(steps, SIGMA_MIN, SIGMA_MAX, rho=RHO).double()


SAMPLERS = {"euler": "sample_euler", "euler_a": "sample_euler_ancestral", "dpmpp_2m": "sample_dpmpp_2m"}


def initial_noise(n: int, videos: int, channels: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return SIGMA_MAX * torch.randn(videos * n, channels, 1, 1, generator=generator, dtype=torch.float64)


def stepwise(model: PosteriorMeanModel, windowed: WindowedDenoiser):
    """The sampler's model function: each evaluation is one step of reference buffers for the oracle."""
    def denoise(x, sigma, **kwargs):
        model.new_step()
        return windowed(x, sigma, **kwargs)
    return denoise


def run(plan_for_step: Optional[PlanForStep], n: int, loop: bool, noise: torch.Tensor,
        ancestral: bool = False, seed: int = 0, steps: int = STEPS, sampler: str = "",
        world: Optional[dict] = None, freeinit: Optional[AnimationOptions] = None):
    """Sample with the plan (None: the full-sequence denoiser). Returns (result, cost).

    sampler: a SAMPLERS key (default: euler, or euler_a with `ancestral`); world: PosteriorMeanModel's.
    freeinit: options whose freeinit_* fields ask for FreeInit (lib_animlong/freeinit.py): the sampler runs
    1 + freeinit_iterations times, each run after the first from the previous result re-initialised (the
    first run's noise for the low band as the paper's code does, or with freeinit_renoise "fresh" new noise seeded
    seed + 1000 * iteration + 500; fresh noise seeded seed + 1000 * iteration for the high band); the cost
    counts every run."""
    sampling, _ = kdiffusion.load()
    slot = CallSlot()
    model = PosteriorMeanModel(n, loop, slot, world=world)
    schedule = sigmas(steps)
    sampler = sampler or ("euler_a" if ancestral else "euler")
    denoiser = model if plan_for_step is None else stepwise(model, WindowedDenoiser(
        model, slot, AnimationOptions(frames=n), num_frames=n, sigmas=schedule,
        planner=lambda step, total_steps, num_frames, options: plan_for_step(step)))
    torch.manual_seed(seed)
    sample = getattr(sampling, SAMPLERS[sampler])
    result = sample(denoiser, noise.clone(), schedule, disable=True)
    for iteration in range(1, 1 + (freeinit.freeinit_iterations if freeinit is not None else 0)):
        fresh = torch.randn(noise.shape, generator=torch.Generator().manual_seed(seed + 1000 * iteration),
                            dtype=noise.dtype)
        low = noise / schedule[0]
        if freeinit.freeinit_renoise == "fresh":
            low = torch.randn(noise.shape, generator=torch.Generator().manual_seed(seed + 1000 * iteration + 500),
                              dtype=noise.dtype)
        start = reinitialise(result, n, schedule[0], low, fresh, freeinit.freeinit_filter,
                             freeinit.freeinit_d_s, freeinit.freeinit_d_t)
        result = sample(denoiser, start, schedule, disable=True)
    cost = model.rows_pushed / (noise.shape[0] * steps)
    return result, cost


def run_keyframes_first(options: AnimationOptions, n: int, loop: bool, noise: torch.Tensor,
                        ancestral: bool = False, seed: int = 0, steps: int = STEPS, sampler: str = "",
                        world: Optional[dict] = None):
    """The two-pass mode through the real pinning code: keyframes sampled jointly, then every frame with
    the keyframes pinned. Returns (result, cost) like `run`; the cost counts the rows of both passes."""
    sampling, _ = kdiffusion.load()
    schedule = sigmas(steps)
    sampler = sampler or ("euler_a" if ancestral else "euler")
    videos = noise.shape[0] // n
    unit = rearrange(noise / SIGMA_MAX, "(v f) c h w -> f v c h w", f=n)
    pushed = []

    def sample(frames, pins):
        slot = CallSlot()
        model = PosteriorMeanModel(n, loop, slot, clip=frames, world=world)
        denoiser = stepwise(model, WindowedDenoiser(model, slot, options, num_frames=len(frames),
                                                    sigmas=schedule, pins=pins))
        x = rearrange(SIGMA_MAX * unit[list(frames)], "f v c h w -> (v f) c h w")
        torch.manual_seed(seed if len(frames) == n else seed + 1)   # the last pass: the full run's noise
        out = getattr(sampling, SAMPLERS[sampler])(denoiser, x, schedule, disable=True)
        pushed.append(model.rows_pushed)
        return rearrange(out, "(v f) c h w -> f v c h w", v=videos)

    latents, _ = keyframes_first(sample, unit, options)
    return rearrange(latents, "f v c h w -> (v f) c h w"), sum(pushed) / (noise.shape[0] * steps)


Fuse = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def run_branched(global_plan: PlanForStep, local_plan: PlanForStep, fuse_at: Callable[[int], Optional[Fuse]],
                 n: int, noise: torch.Tensor, steps: int = STEPS, sampler: str = "euler", seed: int = 0,
                 world: Optional[dict] = None):
    """Two branches of windows per step, fused into one estimate (a benchmark prototype, not the engine).

    At each step `fuse_at(step)` returns None (only the local branch runs), "global" (only the global
    branch runs) or fuse(global_estimate, local_estimate, sigma) -> estimate, each (videos x frames, C, 1,
    1); then both branches run, each as its own step of reference buffers. Returns (result, cost); the
    cost counts the rows of both branches."""
    sampling, _ = kdiffusion.load()
    slot = CallSlot()
    model = PosteriorMeanModel(n, False, slot, world=world)
    schedule = sigmas(steps)
    options = AnimationOptions(frames=n)

    def windowed(plan_for_step):
        return WindowedDenoiser(model, slot, options, num_frames=n, sigmas=schedule,
                                planner=lambda step, total_steps, num_frames, options: plan_for_step(step))
    local, wide = windowed(local_plan), windowed(global_plan)

    def denoise(x, sigma, **kwargs):
        step = local.step_of(sigma)
        fuse = fuse_at(step)
        model.new_step()
        if fuse == "global":
            return wide(x, sigma, step=step, **kwargs)
        estimate = local(x, sigma, step=step, **kwargs)
        if fuse is None:
            return estimate
        model.new_step()
        return fuse(wide(x, sigma, step=step, **kwargs), estimate, float(sigma.flatten()[0]))

    torch.manual_seed(seed)
    result = getattr(sampling, SAMPLERS[sampler])(denoise, noise.clone(), schedule, disable=True)
    return result, model.rows_pushed / (noise.shape[0] * steps)
