"""CFGDenoiser.forward(x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond): the webui's row
layout [cond rows (one block per AND sub-prompt) | uncond rows], one batched call when cond and uncond have
the same token count (batch_cond_uncond), otherwise cond chunks then the uncond rows."""
import torch

from modules import prompt_parser, sd_samplers_common
from modules.script_callbacks import CFGDenoiserParams, cfg_denoiser_callback
from modules.shared import opts, state


class CFGDenoiser(torch.nn.Module):
    def __init__(self, sampler):
        super().__init__()
        self.sampler = sampler
        self.model_wrap = None
        self.step = 0
        self.total_steps = None
        self.p = None

    @property
    def inner_model(self):
        if self.model_wrap is None:
            from modules import shared
            from lib_animlong import kdiffusion
            _, external = kdiffusion.load()
            self.model_wrap = external.CompVisDenoiser(shared.sd_model, quantize=opts.enable_quantization)
        return self.model_wrap

    def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
        if state.interrupted or state.skipped:
            raise sd_samplers_common.InterruptedException
        conds_list, tensor = prompt_parser.reconstruct_multicond_batch(cond, self.step)
        uncond = prompt_parser.reconstruct_cond_batch(uncond, self.step)
        batch_size = len(conds_list)
        repeats = [len(conds) for conds in conds_list]

        def condition(crossattn, concat):
            return {"c_crossattn": [crossattn], "c_concat": [concat]}

        x_in = torch.cat([torch.stack([x[i] for _ in range(n)]) for i, n in enumerate(repeats)] + [x])
        sigma_in = torch.cat([torch.stack([sigma[i] for _ in range(n)]) for i, n in enumerate(repeats)] + [sigma])
        image_cond_in = torch.cat([torch.stack([image_cond[i] for _ in range(n)]) for i, n in enumerate(repeats)]
                                  + [image_cond])
        params = CFGDenoiserParams(x_in, image_cond_in, sigma_in, state.sampling_step, state.sampling_steps,
                                   tensor, uncond, self)
        cfg_denoiser_callback(params)
        x_in, image_cond_in, sigma_in = params.x, params.image_cond, params.sigma
        tensor, uncond = params.text_cond, params.text_uncond

        if tensor.shape[1] == uncond.shape[1]:
            cond_in = torch.cat([tensor, uncond])
            if opts.batch_cond_uncond:
                x_out = self.inner_model(x_in, sigma_in, cond=condition(cond_in, image_cond_in))
            else:
                x_out = torch.zeros_like(x_in)
                for a in range(0, x_out.shape[0], batch_size):
                    b = a + batch_size
                    x_out[a:b] = self.inner_model(x_in[a:b], sigma_in[a:b],
                                                  cond=condition(cond_in[a:b], image_cond_in[a:b]))
        else:
            x_out = torch.zeros_like(x_in)
            chunk = batch_size * 2 if opts.batch_cond_uncond else batch_size
            for a in range(0, tensor.shape[0], chunk):
                b = min(a + chunk, tensor.shape[0])
                x_out[a:b] = self.inner_model(x_in[a:b], sigma_in[a:b], cond=condition(tensor[a:b], image_cond_in[a:b]))
            u = uncond.shape[0]
            x_out[-u:] = self.inner_model(x_in[-u:], sigma_in[-u:], cond=condition(uncond, image_cond_in[-u:]))

        denoised_uncond = x_out[-uncond.shape[0]:]
        denoised = torch.clone(denoised_uncond)
        for i, conds in enumerate(conds_list):
            for cond_index, weight in conds:
                denoised[i] += (x_out[cond_index] - denoised_uncond[i]) * (weight * cond_scale)
        self.sampler.last_latent = torch.cat([x_out[c[0][0]:c[0][0] + 1] for c in conds_list])
        self.step += 1
        return denoised
