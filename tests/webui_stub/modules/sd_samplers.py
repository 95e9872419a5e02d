"""create_sampler(name, model) -> a KDiffusionSampler over k-diffusion's real sampler functions, with
`model_wrap` (CompVisDenoiser, created per sampler), `model_wrap_cfg` (CFGDenoiser) and `get_sigmas`."""
import torch

from modules import sd_samplers_common
from modules.sd_samplers_cfg_denoiser import CFGDenoiser
from modules.shared import opts, state

SAMPLERS = {"Euler": "sample_euler", "Euler a": "sample_euler_ancestral", "DPM++ 2M": "sample_dpmpp_2m",
            "Heun": "sample_heun"}


def _sampling():
    from lib_animlong import kdiffusion
    return kdiffusion.load()[0]


def create_sampler(name, model):
    return KDiffusionSampler(SAMPLERS[name], model)


class KDiffusionSampler:
    def __init__(self, funcname, sd_model):
        self.funcname = funcname
        self.func = getattr(_sampling(), funcname)
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
        state.sampling_steps = steps
        state.sampling_step = 0
        try:
            return func()
        except sd_samplers_common.InterruptedException:
            return self.last_latent

    def _run(self, p, x, sigmas, conditioning, unconditional_conditioning, image_conditioning):
        self.p = p
        self.model_wrap_cfg.p = p
        self.model_wrap_cfg.step = 0
        self.model_wrap_cfg.total_steps = len(sigmas) - 1
        self.sampler_extra_args = dict(cond=conditioning, image_cond=image_conditioning,
                                       uncond=unconditional_conditioning, cond_scale=p.cfg_scale, s_min_uncond=0.0)
        extra = {}
        if self.funcname == "sample_euler_ancestral":
            generator = torch.Generator().manual_seed(int(p.seeds[0]))
            extra["noise_sampler"] = lambda s, t: torch.randn(x.shape, generator=generator)
        with torch.no_grad():
            return self.launch_sampling(len(sigmas) - 1, lambda: self.func(
                self.model_wrap_cfg, x, sigmas, extra_args=self.sampler_extra_args, disable=True,
                callback=self.callback_state, **extra))

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
