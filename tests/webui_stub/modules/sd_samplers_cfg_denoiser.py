"""CFGDenoiser.forward(x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond), following the real
v1.10.1 file (modules/sd_samplers_cfg_denoiser.py) step by step for everything an extension can observe:

- x_in repeats each image once per AND part, interleaved: cat([stack([x[i]] * repeats[i]) for i] + [x]);
  sigma_in and image_cond_in follow the same layout; on_cfg_denoiser sees (and may replace) them;
- skip_early_cond (opts, by self.step / self.total_steps) and s_min_uncond (odd CFG calls, or every call with
  s_min_uncond_all) drop the uncond rows: x_in[:-batch_size];
- pad_cond_uncond_v0 / pad_cond_uncond make cond and uncond the same token length;
- equal lengths (or skipped uncond): one call with batch_cond_uncond, else chunks of batch_size rows;
  different lengths: cond chunks of 2 * batch_size (batch_cond_uncond) or batch_size rows, then the uncond
  rows in one call.
No edit models, no refiner, no masks (not used by the tests)."""
import torch

from modules import prompt_parser, sd_samplers_common, shared
from modules.script_callbacks import CFGDenoiserParams, cfg_denoiser_callback
from modules.shared import opts, state


def _pad_with_empty(tensor, repeats, empty):
    return torch.cat([tensor, empty.repeat((tensor.shape[0], repeats, 1))], dim=1)


class CFGDenoiser(torch.nn.Module):
    def __init__(self, sampler):
        super().__init__()
        self.sampler = sampler
        self.model_wrap = None
        self.step = 0
        self.steps = None
        self.total_steps = None
        self.p = None
        self.padded_cond_uncond = False
        self.padded_cond_uncond_v0 = False

    @property
    def inner_model(self):
        if self.model_wrap is None:
            from lib_animlong import kdiffusion
            _, external = kdiffusion.load()
            self.model_wrap = external.CompVisDenoiser(shared.sd_model, quantize=opts.enable_quantization)
        return self.model_wrap

    def pad_cond_uncond(self, cond, uncond):
        empty = shared.sd_model.cond_stage_model_empty_prompt
        more = (cond.shape[1] - uncond.shape[1]) // empty.shape[1]
        if more < 0:
            cond = _pad_with_empty(cond, -more, empty)
            self.padded_cond_uncond = True
        elif more > 0:
            uncond = _pad_with_empty(uncond, more, empty)
            self.padded_cond_uncond = True
        return cond, uncond

    def pad_cond_uncond_v0(self, cond, uncond):
        if uncond.shape[1] < cond.shape[1]:
            uncond = torch.hstack([uncond, uncond[:, -1:].repeat([1, cond.shape[1] - uncond.shape[1], 1])])
            self.padded_cond_uncond_v0 = True
        elif uncond.shape[1] > cond.shape[1]:
            uncond = uncond[:, :cond.shape[1]]
            self.padded_cond_uncond_v0 = True
        return cond, uncond

    def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
        if state.interrupted or state.skipped:
            raise sd_samplers_common.InterruptedException
        conds_list, tensor = prompt_parser.reconstruct_multicond_batch(cond, self.step)
        uncond = prompt_parser.reconstruct_cond_batch(uncond, self.step)
        batch_size = len(conds_list)
        repeats = [len(conds) for conds in conds_list]

        def condition(crossattn, concat):
            return {"c_crossattn": [crossattn], "c_concat": [concat]}

        def interleave(rows, tail):
            return torch.cat([torch.stack([rows[i] for _ in range(n)]) for i, n in enumerate(repeats)] + [tail])

        x_in, sigma_in, image_cond_in = interleave(x, x), interleave(sigma, sigma), interleave(image_cond, image_cond)
        params = CFGDenoiserParams(x_in, image_cond_in, sigma_in, state.sampling_step, state.sampling_steps,
                                   tensor, uncond, self)
        cfg_denoiser_callback(params)
        x_in, image_cond_in, sigma_in = params.x, params.image_cond, params.sigma
        tensor, uncond = params.text_cond, params.text_uncond

        skip_uncond = False
        if opts.skip_early_cond != 0. and self.step / self.total_steps <= opts.skip_early_cond:
            skip_uncond = True
        elif (self.step % 2 or opts.s_min_uncond_all) and s_min_uncond > 0 and sigma[0] < s_min_uncond:
            skip_uncond = True
        if skip_uncond:
            x_in, sigma_in = x_in[:-batch_size], sigma_in[:-batch_size]

        self.padded_cond_uncond = self.padded_cond_uncond_v0 = False
        if opts.pad_cond_uncond_v0 and tensor.shape[1] != uncond.shape[1]:
            tensor, uncond = self.pad_cond_uncond_v0(tensor, uncond)
        elif opts.pad_cond_uncond and tensor.shape[1] != uncond.shape[1]:
            tensor, uncond = self.pad_cond_uncond(tensor, uncond)

        if tensor.shape[1] == uncond.shape[1] or skip_uncond:
            cond_in = tensor if skip_uncond else torch.cat([tensor, uncond])
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
            if not skip_uncond:
                u = uncond.shape[0]
                x_out[-u:] = self.inner_model(x_in[-u:], sigma_in[-u:], cond=condition(uncond, image_cond_in[-u:]))

        first_rows = [conds[0][0] for conds in conds_list]
        if skip_uncond:
            x_out = torch.cat([x_out, torch.cat([x_out[i:i + 1] for i in first_rows])])
        denoised_uncond = x_out[-uncond.shape[0]:]
        denoised = torch.clone(denoised_uncond)
        scale = 1.0 if skip_uncond else cond_scale
        for i, conds in enumerate(conds_list):
            for cond_index, weight in conds:
                denoised[i] += (x_out[cond_index] - denoised_uncond[i]) * (weight * scale)
        self.sampler.last_latent = torch.cat([x_out[i:i + 1] for i in first_rows])
        self.step += 1
        return denoised
