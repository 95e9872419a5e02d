"""StableDiffusionProcessing(Txt2Img/Img2Img), Processed and process_images(p): one generation through the
webui's hook order (webui.md): before_process -> override_settings -> process -> p.init -> per batch of
n_iter: before_process_batch -> process_batch -> setup_conds -> sample (process_before_every_sampling, again
for the hires pass after before_hr) -> post_sample -> postprocess_batch / _list -> postprocess_image ->
after all batches postprocess."""
import json

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from modules import devices, images, infotext_utils, prompt_parser, scripts, sd_samplers, sd_samplers_common, shared
from modules.shared import opts, state


class ImageRNG:
    """Noise per image from its own generator seeded seed + i (the webui's per-image seeds)."""

    def __init__(self, shape, seeds):
        self.shape = tuple(shape)
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def next(self):
        return torch.stack([torch.randn(self.shape, generator=g) for g in self.generators])


class StableDiffusionProcessing:
    def __init__(self, prompt="", negative_prompt="", seed=1, subseed=-1, subseed_strength=0.0, sampler_name="Euler",
                 batch_size=1, n_iter=1, steps=8, cfg_scale=5.0, width=64, height=64, outpath_samples=None,
                 outpath_grids=None, override_settings=None, do_not_save_samples=False, do_not_save_grid=False,
                 styles=None, script_args=None, scripts=None):
        self.sd_model = shared.sd_model
        self.prompt, self.negative_prompt = prompt, negative_prompt
        self.seed, self.subseed, self.subseed_strength = seed, subseed, subseed_strength
        self.sampler_name = sampler_name
        self.batch_size, self.n_iter, self.steps, self.cfg_scale = batch_size, n_iter, steps, cfg_scale
        self.width, self.height = width, height
        self.outpath_samples, self.outpath_grids = outpath_samples, outpath_grids
        self.override_settings = override_settings or {}
        self.do_not_save_samples, self.do_not_save_grid = do_not_save_samples, do_not_save_grid
        self.styles = styles or []
        self.script_args = tuple(script_args or ())
        self.scripts = scripts
        self.extra_generation_params = {}
        self.is_api = False
        self.sampler = None
        self.c = self.uc = None
        self.is_hr_pass = False
        self.comments = {}
        self.s_min_uncond = 0.0

    def setup_prompts(self):
        self.all_prompts = self.batch_size * self.n_iter * [self.prompt]
        self.all_negative_prompts = self.batch_size * self.n_iter * [self.negative_prompt]

    def setup_conds(self):
        self.c = prompt_parser.get_multicond_learned_conditioning(self.sd_model, self.prompts, self.steps)
        self.uc = prompt_parser.get_learned_conditioning(self.sd_model, self.negative_prompts, self.steps)

    def init(self, all_prompts, all_seeds, all_subseeds):
        pass

    def parse_extra_network_prompts(self):
        pass

    def close(self):
        self.sampler = None
        self.c = self.uc = None

    def txt2img_image_conditioning(self, x):
        return x.new_zeros(x.shape[0], 5, 1, 1)


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    def __init__(self, enable_hr=False, hr_scale=2.0, hr_second_pass_steps=0, denoising_strength=0.5,
                 hr_upscaler="Latent", hr_sampler_name=None, hr_prompt="", hr_negative_prompt="", **kwargs):
        super().__init__(**kwargs)
        self.enable_hr, self.hr_scale, self.hr_second_pass_steps = enable_hr, hr_scale, hr_second_pass_steps
        self.denoising_strength, self.hr_upscaler = denoising_strength, hr_upscaler
        self.hr_sampler_name = hr_sampler_name
        self.hr_prompt, self.hr_negative_prompt = hr_prompt, hr_negative_prompt

    def setup_prompts(self):
        super().setup_prompts()
        self.all_hr_prompts = self.batch_size * self.n_iter * [self.hr_prompt] if self.hr_prompt else self.all_prompts

    def parse_extra_network_prompts(self):
        if self.enable_hr:   # the hires prompts of this batch are sliced here, after before_process_batch
            first = self.iteration * self.batch_size
            self.hr_prompts = self.all_hr_prompts[first:first + self.batch_size]

    def setup_conds(self):
        super().setup_conds()
        if self.enable_hr:
            if self.hr_prompts == self.prompts:
                self.hr_c = self.c
            else:
                self.hr_c = prompt_parser.get_multicond_learned_conditioning(self.sd_model, self.hr_prompts, self.steps)
            self.hr_uc = self.uc

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        x = self.rng.next()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(self, x=x, noise=x, c=conditioning,
                                                       uc=unconditional_conditioning)
        samples = self.sampler.sample(self, x, conditioning, unconditional_conditioning,
                                      image_conditioning=self.txt2img_image_conditioning(x))
        if not self.enable_hr or state.interrupted or state.skipped:
            return samples
        return self.sample_hr_pass(samples)

    def sample_hr_pass(self, samples):
        self.is_hr_pass = True
        samples = F.interpolate(samples, scale_factor=self.hr_scale, mode="nearest")
        if self.scripts is not None:
            self.scripts.before_hr(self)
        self.sampler = sd_samplers.create_sampler(self.hr_sampler_name or self.sampler_name, self.sd_model)
        self.rng = ImageRNG(samples.shape[1:], self.seeds)
        noise = self.rng.next()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(self, x=samples, noise=noise, c=self.hr_c, uc=self.hr_uc)
        samples = self.sampler.sample_img2img(self, samples, noise, self.hr_c, self.hr_uc,
                                              steps=self.hr_second_pass_steps or self.steps,
                                              image_conditioning=self.txt2img_image_conditioning(samples))
        self.is_hr_pass = False
        return samples


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    def __init__(self, init_images=None, denoising_strength=0.75, image_mask=None, resize_mode=0, **kwargs):
        super().__init__(**kwargs)
        self.resize_mode = resize_mode
        self.init_images = init_images or []
        self.denoising_strength = denoising_strength
        self.image_mask = image_mask
        self.init_latent = None
        self.image_conditioning = None
        self.mask = self.nmask = None
        self.overlay_images = None
        self.color_corrections = None

    def init(self, all_prompts, all_seeds, all_subseeds):
        """As the webui's (v1.10.1, no mask): flatten, resize_image(resize_mode) unless 3, [0, 1] pixels on
        shared.device in devices.dtype_vae, images_tensor_to_samples; one image is repeated per batch."""
        arrays = []
        for img in self.init_images:
            image = images.flatten(img, opts.img2img_background_color)
            if self.resize_mode != 3:
                image = images.resize_image(self.resize_mode, image, self.width, self.height)
            arrays.append(np.moveaxis(np.array(image).astype(np.float32) / 255.0, 2, 0))
        self.color_corrections = [self.init_images[0]] if len(arrays) == 1 else None
        if len(arrays) == 1:   # the webui encodes the whole batch (one VAE call per image)
            batch = np.expand_dims(arrays[0], axis=0).repeat(self.batch_size, axis=0)
            self.color_corrections = self.color_corrections * self.batch_size
        else:
            batch = np.array(arrays)
        image = torch.from_numpy(batch).to(shared.device, dtype=devices.dtype_vae)
        self.init_latent = sd_samplers_common.images_tensor_to_samples(
            image, sd_samplers_common.approximation_indexes.get(opts.sd_vae_encode_method), self.sd_model)
        if self.resize_mode == 3:
            self.init_latent = F.interpolate(self.init_latent, size=(self.height // 8, self.width // 8), mode="bilinear")
        self.image_conditioning = self.init_latent.new_zeros(self.init_latent.shape[0], 5, 1, 1)

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        x = self.rng.next()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(self, x=self.init_latent, noise=x, c=conditioning,
                                                       uc=unconditional_conditioning)
        return self.sampler.sample_img2img(self, self.init_latent, x, conditioning, unconditional_conditioning,
                                           image_conditioning=self.image_conditioning)


class Processed:
    def __init__(self, p, images_list, seed=-1, info="", subseed=None, all_prompts=None, all_seeds=None,
                 index_of_first_image=0, infotexts=None, comments=""):
        self.images = images_list
        self.prompt, self.seed, self.info = p.prompt, seed, info
        self.all_prompts, self.all_seeds = all_prompts or [], all_seeds or []
        self.index_of_first_image = index_of_first_image
        self.infotexts = infotexts or [info]
        self.comments = comments
        self.extra_images = []
        self.width, self.height = p.width, p.height
        self.batch_size = p.batch_size

    def js(self):
        return json.dumps(dict(prompt=self.prompt, seed=self.seed, all_seeds=self.all_seeds, infotexts=self.infotexts,
                               index_of_first_image=self.index_of_first_image, comments=self.comments))


def create_infotext(p, all_prompts, all_seeds, all_subseeds, comments=None, iteration=0, position_in_batch=0):
    index = position_in_batch + iteration * p.batch_size
    params = {"Steps": p.steps, "Sampler": p.sampler_name, "CFG scale": p.cfg_scale, "Seed": all_seeds[index],
              "Size": f"{p.width}x{p.height}"}
    params.update(p.extra_generation_params)
    params = {k: (v[index] if isinstance(v, list) else v) for k, v in params.items() if v is not None}
    line = ", ".join(f"{k}: {infotext_utils.quote(v)}" for k, v in params.items())
    return f"{all_prompts[index]}\nNegative prompt: {p.all_negative_prompts[index]}\n{line}"


def process_images(p):
    if p.scripts is not None:
        p.scripts.before_process(p)
    stored = {k: opts.data.get(k) for k in p.override_settings}
    try:
        for k, v in p.override_settings.items():
            setattr(opts, k, v)
        return process_images_inner(p)
    finally:
        for k, v in stored.items():
            setattr(opts, k, v)


def process_images_inner(p):
    p.setup_prompts()
    p.all_seeds = [int(p.seed) + x for x in range(len(p.all_prompts))]
    p.all_subseeds = [int(p.subseed) + x for x in range(len(p.all_prompts))]
    if p.scripts is not None:
        p.scripts.process(p)
    infotexts, output_images = [], []
    state.job_count = p.n_iter
    with torch.no_grad():
        p.init(p.all_prompts, p.all_seeds, p.all_subseeds)
        for n in range(p.n_iter):
            if state.skipped:
                state.skipped = False
            if state.interrupted or state.stopping_generation:
                break
            p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
            p.negative_prompts = p.all_negative_prompts[n * p.batch_size:(n + 1) * p.batch_size]
            p.seeds = p.all_seeds[n * p.batch_size:(n + 1) * p.batch_size]
            p.subseeds = p.all_subseeds[n * p.batch_size:(n + 1) * p.batch_size]
            p.rng = ImageRNG((4, p.height // 8, p.width // 8), p.seeds)
            if p.scripts is not None:
                p.scripts.before_process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
            p.iteration = n
            p.parse_extra_network_prompts()
            if p.scripts is not None:
                p.scripts.process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
            p.setup_conds()
            samples = p.sample(conditioning=p.c, unconditional_conditioning=p.uc, seeds=p.seeds, subseeds=p.subseeds,
                               subseed_strength=p.subseed_strength, prompts=p.prompts)
            if p.scripts is not None:
                ps = scripts.PostSampleArgs(samples)
                p.scripts.post_sample(p, ps)
                samples = ps.samples
            x_samples = torch.clamp((p.sd_model.decode_first_stage(samples) + 1.0) / 2.0, 0.0, 1.0)
            if p.scripts is not None:
                p.scripts.postprocess_batch(p, x_samples, batch_number=n)
                pp = scripts.PostprocessBatchListArgs(list(x_samples))
                p.scripts.postprocess_batch_list(p, pp, batch_number=n)
                x_samples = pp.images
            for i, x_sample in enumerate(x_samples):
                array = (255.0 * x_sample.permute(1, 2, 0).cpu().numpy()).round().astype(np.uint8)
                image = Image.fromarray(array)
                if p.scripts is not None:
                    pp = scripts.PostprocessImageArgs(image)
                    p.scripts.postprocess_image(p, pp)
                    image = pp.image
                text = create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds, iteration=n, position_in_batch=i)
                if opts.samples_save and not p.do_not_save_samples:
                    images.save_image(image, p.outpath_samples, "", p.seeds[i], p.prompts[i], info=text, p=p)
                infotexts.append(text)
                output_images.append(image)
            state.nextjob()
    index_of_first_image = 0
    if len(output_images) > 1 and opts.return_grid and not p.do_not_save_grid:
        output_images.insert(0, output_images[0].copy())   # stands for the grid image
        infotexts.insert(0, infotexts[0])
        index_of_first_image = 1
    res = Processed(p, output_images, p.all_seeds[0], infotexts[0] if infotexts else "",
                    all_prompts=p.all_prompts, all_seeds=p.all_seeds, index_of_first_image=index_of_first_image,
                    infotexts=infotexts)
    if p.scripts is not None:
        p.scripts.postprocess(p, res)
    return res
