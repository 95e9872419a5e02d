"""create_sampler(name, model) -> a KDiffusionSampler over k-diffusion's real sampler functions, shaped like
the webui's (modules/sd_samplers_kdiffusion.py, sd_samplers_common.py, v1.10.1): `config.options`
(second_order ...), `model_wrap` (CompVisDenoiser, created per sampler), `model_wrap_cfg` (CFGDenoiser),
`get_sigmas`, `func` called with keyword arguments chosen from inspect.signature(self.func), the step callback
`callback_state`, and `launch_sampling`, which returns the last latent on InterruptedException."""
import inspect
from collections import namedtuple

import torch

from modules import sd_samplers_common
from modules.sd_samplers_cfg_denoiser import CFGDenoiser
from modules.shared import opts, state


class SamplerData(namedtuple("SamplerData", ["name", "funcname", "options"])):
    def total_steps(self, steps):
        return steps * 2 if self.options.get("second_order", False) else steps


SAMPLERS = {data.name: data for data in [
    SamplerData("Euler", "sample_euler", {}),
    SamplerData("Euler a", "sample_euler_ancestral", {"uses_ensd": True}),
    SamplerData("DPM++ 2M", "sample_dpmpp_2m", {}),
    SamplerData("Heun", "sample_heun", {"second_order": True}),
    SamplerData("DPM2", "sample_dpm_2", {"second_order": True}),
    SamplerData("DPM++ 2S a", "sample_dpmpp_2s_ancestral", {"second_order": True, "uses_ensd": True}),
    SamplerData("DPM++ SDE", "sample_dpmpp_sde", {"second_order": True, "brownian_noise": True}),
    SamplerData("DPM adaptive", "sample_dpm_adaptive", {}),
]}


def _sampling():
    from lib_animlong import kdiffusion
    return kdiffusion.load()[0]


def create_sampler(name, model):
    data = SAMPLERS[name]
    sampler = KDiffusionSampler(data.funcname, model)
    sampler.config = data
    return sampler


class KDiffusionSampler:
    def __init__(self, funcname, sd_model):
        self.funcname = funcname
        self.func = getattr(_sampling(), funcname)
        self.config = None
        self.model_wrap_cfg = CFGDenoiser(self)
        self.model_wrap = self.model_wrap_cfg.inner_model
        self.sampler_extra_args = {}
        self.last_latent = None
        self.p = None

    def get_sigmas(self, p, steps):
        return self.model_wrap.get_sigmas(steps)

    def callback_state(self, d):
        state.sampling_step = d["i"]

    def launch_sampling(self, steps, func):
        self.model_wrap_cfg.steps = steps
        self.model_wrap_cfg.total_steps = self.config.total_steps(steps)
        state.sampling_steps = steps
        state.sampling_step = 0
        try:
            return func()
        except sd_samplers_common.InterruptedException:
            return self.last_latent

    def _kwargs(self, p, x, sigmas):
        parameters = inspect.signature(self.func).parameters
        kwargs = {}
        if "sigmas" in parameters:
            kwargs["sigmas"] = sigmas
        if "sigma_min" in parameters:
            kwargs["sigma_min"], kwargs["sigma_max"] = sigmas[-2], sigmas[0]
        if "n" in parameters:
            kwargs["n"] = len(sigmas) - 1
        if "noise_sampler" in parameters:   # seeded per run (the webui's: per image seed / brownian tree)
            generator = torch.Generator().manual_seed(int(p.seeds[0]))
            kwargs["noise_sampler"] = lambda s, t: torch.randn(x.shape, generator=generator)
        return kwargs

    def _run(self, p, x, sigmas, conditioning, unconditional_conditioning, image_conditioning):
        self.p = p
        self.model_wrap_cfg.p = p
        self.model_wrap_cfg.step = 0
        self.last_latent = x
        self.sampler_extra_args = dict(cond=conditioning, image_cond=image_conditioning,
                                       uncond=unconditional_conditioning, cond_scale=p.cfg_scale,
                                       s_min_uncond=getattr(p, "s_min_uncond", 0.0))
        kwargs = self._kwargs(p, x, sigmas)
        with torch.no_grad():
            return self.launch_sampling(len(sigmas) - 1, lambda: self.func(
                self.model_wrap_cfg, x, extra_args=self.sampler_extra_args, disable=True,
                callback=self.callback_state, **kwargs))

    def sample(self, p, x, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        steps = steps or p.steps
        sigmas = self.get_sigmas(p, steps)
        return self._run(p, x * sigmas[0], sigmas, conditioning, unconditional_conditioning, image_conditioning)

    def sample_img2img(self, p, x, noise, conditioning, unconditional_conditioning, steps=None,
                       image_conditioning=None):
        if opts.img2img_fix_steps or steps is not None:
            requested = steps or p.steps
            steps = int(requested / min(p.denoising_strength, 0.999)) if p.denoising_strength > 0 else 0
            t_enc = requested - 1
        else:
            steps = p.steps
            t_enc = int(min(p.denoising_strength, 0.999) * steps)
        sigmas = self.get_sigmas(p, steps)
        sigma_sched = sigmas[steps - t_enc - 1:]
        xi = x + noise * sigma_sched[0]
        return self._run(p, xi, sigma_sched, conditioning, unconditional_conditioning, image_conditioning)
