"""One long-animation generation in the webui, hook by hook.

Frames are the batch. Nothing on the shared model is changed between hooks: at every sampling pass
(hires fix included) the pass's own k-diffusion model wrapper (`p.sampler.model_wrap`, created per
sampler) gets the motion module's training schedule and a `forward` that runs the window engine, and the
motion modules are injected into the UNet only for the duration of each of our model calls (inject_motion
is a context manager). So success, a failure in the UNet, an interrupt or a skip all leave the model as it
was. A model call whose rows are not whole blocks of frames (another extension's) passes through untouched.

The webui catches exceptions raised by script hooks and carries on, which would give the user a silent
still image; so a hook records its error and the first model call of the generation raises it instead.
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

from ..conditioning.pinning import image_pins
from ..conditioning.prompt_travel import interpolate_conditioning, parse_prompt_travel
from ..errors import AnimLongError
from ..fitting import fit_options
from ..motion.inject import inject_motion, training_alphas_cumprod
from ..motion.placement import placed
from ..noise import freenoise
from ..sampling.windowed import WindowedDenoiser
from .request import INFOTEXT_KEY, AnimRequest, infotext_value

ENCODE_CHUNK = 8
FIT_INFOTEXT_KEY = "AnimLong fit"   # what was fitted to the motion module's positional table, if anything


@dataclass
class Generation:
    """Per-generation state, kept on `p.animlong` (never at module level)."""
    request: AnimRequest
    error: Optional[BaseException] = None
    motion: Any = None
    travel: Optional[Dict[int, str]] = None
    first_latent: Optional[torch.Tensor] = None
    last_latent: Optional[torch.Tensor] = None
    attention: str = "sdpa"          # the temporal attention backend (the webui's own optimisation)
    running: Any = None              # the motion module on the UNet's device/dtype while a pass samples

    @property
    def frames(self) -> int:
        return self.request.options.frames


def begin(p, request: AnimRequest, load_motion, attention_backend: Callable[[], str] = lambda: "sdpa"
          ) -> Generation:
    """before_process: frames become the batch; the motion module and prompt travel are read, the options
    fitted to the module's positional table (recorded in the infotext), the attention backend chosen.

    attention_backend: returns the engine's backend for the webui's own optimisation (webui.attention)."""
    generation = Generation(request)
    p.animlong = generation
    try:
        p.batch_size = request.options.frames
        p.do_not_save_grid = True      # no grid of every frame; frames are saved by us when the settings say so
        p.do_not_save_samples = True
        generation.travel = parse_prompt_travel(p.prompt if isinstance(p.prompt, str) else "", generation.frames)
        generation.motion = load_motion(request.motion_module)
        fitted = fit_options(request.options, generation.motion.spec.pe_length)
        request = generation.request = dataclasses.replace(request, options=fitted.options)
        generation.attention = attention_backend()
        p.extra_generation_params[INFOTEXT_KEY] = infotext_value(request, hasattr(p, "init_images"))
        if fitted.adjustments:
            p.extra_generation_params[FIT_INFOTEXT_KEY] = fitted.infotext()
    except Exception as error:   # kept, raised at the first model call
        generation.error = error
        raise
    return generation


def prepare(p, generation: Generation) -> None:
    """process: the hires pass's prompts follow prompt travel; img2img encodes one image, not the batch."""
    try:
        if generation.travel and getattr(p, "all_hr_prompts", None) == p.all_prompts:
            p.all_hr_prompts = [_keyframe_prompts(generation)[i % generation.frames]
                                for i in range(len(p.all_prompts))]
        if hasattr(p, "init_images"):
            _encode_images_once(p, generation)
    except Exception as error:
        generation.error = error
        raise


def assign_keyframe_prompts(p, generation: Generation) -> None:
    """before_process_batch: each frame encodes the prompt of its keyframe (install() blends between them);
    p.all_prompts keeps the travel text, so the infotext restores it."""
    if generation.travel and generation.error is None:
        p.prompts = _keyframe_prompts(generation)


def _keyframe_prompts(generation: Generation) -> List[str]:
    """Per frame: the prompt of the keyframe at or before it (the first keyframe before any)."""
    keys = sorted(generation.travel)
    return [generation.travel[max([k for k in keys if k <= i], default=keys[0])] for i in range(generation.frames)]


def _encode_images_once(p, generation: Generation) -> None:
    """The webui encodes the init image once per frame in one VAE call; encode it once and repeat."""
    webui_init = p.init
    last_image = generation.request.last_frame

    def init(all_prompts, all_seeds, all_subseeds):
        frames, p.batch_size = p.batch_size, 1
        try:
            webui_init(all_prompts, all_seeds, all_subseeds)
        finally:
            p.batch_size = frames
        generation.first_latent = p.init_latent[0]
        p.init_latent = _repeat(p.init_latent, frames)
        if isinstance(getattr(p, "image_conditioning", None), torch.Tensor):
            p.image_conditioning = _repeat(p.image_conditioning, frames)
        for name in ("overlay_images", "color_corrections"):   # per-image lists the webui repeats per batch
            value = getattr(p, name, None)
            if isinstance(value, list) and len(value) == 1:
                setattr(p, name, value * frames)
        if last_image is not None:
            generation.last_latent = encode_images(p.sd_model, [last_image], p.width, p.height)[0]

    p.init = init


def _repeat(batch: torch.Tensor, frames: int) -> torch.Tensor:
    if batch.shape[0] != 1:
        return batch
    return batch.expand((frames,) + tuple(batch.shape[1:])).contiguous()


def encode_images(sd_model, images, width: int, height: int, chunk: int = ENCODE_CHUNK) -> torch.Tensor:
    """PIL images -> latents (n, C, h, w), through the VAE `chunk` images at a time."""
    latents = []
    for start in range(0, len(images), chunk):
        pixels = [torch.from_numpy(np.asarray(image.convert("RGB").resize((width, height)), dtype=np.float32))
                  for image in images[start:start + chunk]]
        batch = torch.stack(pixels).permute(0, 3, 1, 2) / 127.5 - 1.0
        latents.append(sd_model.get_first_stage_encoding(sd_model.encode_first_stage(batch)))
    return torch.cat(latents)


def install(p, generation: Generation, state, noise: torch.Tensor, c) -> None:
    """process_before_every_sampling: the window engine on this pass's sampler (or the recorded error)."""
    model_wrap = getattr(p.sampler, "model_wrap", None)
    if generation.error is not None:
        _raise_on_first_call(model_wrap, generation.error)
        return
    try:
        _install(p, generation, state, noise, c, model_wrap)
    except Exception as error:
        generation.error = error
        _raise_on_first_call(model_wrap, error)
        raise


def _raise_on_first_call(model_wrap, error: BaseException) -> None:
    def forward(*args, **kwargs):
        raise error
    if model_wrap is not None:
        model_wrap.forward = forward


def _install(p, generation: Generation, state, noise, c, model_wrap) -> None:
    if model_wrap is None or not hasattr(model_wrap, "sigmas"):
        raise AnimLongError(f"AnimLong: the sampler {p.sampler_name!r} is not supported; choose a k-diffusion "
                            "sampler such as Euler, Euler a or DPM++ 2M.")
    unet = _unet(p.sd_model)
    options, frames = generation.request.options, generation.frames
    if noise.shape[0] != frames:
        raise AnimLongError(f"AnimLong: the batch has {noise.shape[0]} images but the animation {frames} frames; "
                            "another extension changed the batch size.")
    _use_training_schedule(model_wrap, generation.motion)
    ladder = _record_sigmas(p.sampler)
    if options.noise == "freenoise":
        noise.copy_(freenoise(noise.cpu(), options.context_length, max(1, options.context_length // 4),
                              int(p.seeds[0])).to(noise))
    if generation.travel and c is not None:
        apply_prompt_travel(c, generation.travel, frames, options.closed_loop)
    pins = None
    if not getattr(p, "is_hr_pass", False) and (generation.first_latent is not None
                                                 or generation.last_latent is not None):
        pins = image_pins(options, noise.cpu(), generation.first_latent, generation.last_latent)
    webui_forward = model_wrap.forward
    _place_for_pass(p.sampler, generation, unet)

    # The step comes from sigma on this pass's own ladder, not from on_cfg_denoiser's sampling_step: that is
    # set by the sampler's callback after each step (one behind from the second step on), counts from the
    # start of img2img's truncated ladder, and CFGDenoiser.step counts model calls (2 per step for Heun).
    def forward(x, sigma, **kwargs):
        if x.shape[0] % frames:
            return webui_forward(x, sigma, **kwargs)   # not one of ours
        if not ladder:
            raise AnimLongError("AnimLong: the sampler did not ask for its sigmas; it is not supported.")
        motion = generation.motion if generation.running is None else generation.running
        with inject_motion(unet, motion, attention=generation.attention) as injected:
            progress = _Progress(webui_forward, injected.slot, state)
            windowed = WindowedDenoiser(progress, injected.slot, options, num_frames=frames, sigmas=ladder[-1],
                                        pins=pins)
            progress.start(windowed, sigma)
            return windowed(x, sigma, **kwargs)

    model_wrap.forward = forward


def _place_for_pass(sampler, generation: Generation, unet) -> None:
    """The cached module stays on the CPU in its file's dtype; this pass's sampling (launch_sampling, per
    sampler, so per pass) runs a copy on the UNet's device and dtype, released when it returns or raises."""
    webui_launch = sampler.launch_sampling
    parameter = next(unet.parameters())

    def launch_sampling(steps, func):
        with placed(generation.motion, parameter.device, parameter.dtype) as running:
            generation.running = running
            try:
                return webui_launch(steps, func)
            finally:
                generation.running = None

    sampler.launch_sampling = launch_sampling


def _unet(sd_model):
    try:
        return sd_model.model.diffusion_model
    except AttributeError:
        raise AnimLongError("AnimLong: this webui's model has no ldm UNet (shared.sd_model.model."
                            "diffusion_model); long animation needs the A1111 webui's SD1.5 UNet.") from None


def _use_training_schedule(model_wrap, motion) -> None:
    """The motion module's training schedule for this sampler only (its buffers are per sampler)."""
    alphas = training_alphas_cumprod(motion.spec)
    sigmas = ((1 - alphas) / alphas) ** 0.5
    model_wrap.sigmas = sigmas.to(device=model_wrap.sigmas.device, dtype=model_wrap.sigmas.dtype)
    model_wrap.log_sigmas = model_wrap.sigmas.log()


def _record_sigmas(sampler) -> List[torch.Tensor]:
    """The sigma ladder the sampler computes for this pass (the window plan's steps follow it)."""
    ladder: List[torch.Tensor] = []
    webui_get_sigmas = sampler.get_sigmas

    def get_sigmas(p, steps):
        sigmas = webui_get_sigmas(p, steps)
        ladder.append(sigmas)
        return sigmas

    sampler.get_sigmas = get_sigmas
    return ladder


class _Progress:
    """Calls the model and shows the window being computed in the webui's status text."""

    def __init__(self, model, slot, state):
        self.model, self.slot, self.state = model, slot, state
        self.text, self.count, self.index = "", 0, 0

    def start(self, windowed: WindowedDenoiser, sigma) -> None:
        step = windowed.step_of(sigma)
        self.count, self.index = len(windowed.windows(step)), 0
        self.text = f"AnimLong: step {step + 1}/{windowed.total_steps}"

    def __call__(self, x, sigma, **kwargs):
        call = self.slot.current
        self.index += 1
        if call is not None and call.frame_indices:
            self.state.textinfo = (f"{self.text}, window {min(self.index, self.count)}/{self.count} "
                                   f"(frames {describe_frames(call.frame_indices)})")
        return self.model(x, sigma, **kwargs)


def describe_frames(frames) -> str:
    """'4-11' for a run of frames, '0,4,8,...' (the first few) otherwise."""
    frames = list(frames)
    if frames == list(range(frames[0], frames[0] + len(frames))):
        return f"{frames[0]}-{frames[-1]}" if len(frames) > 1 else str(frames[0])
    shown = ",".join(str(f) for f in frames[:4])
    return shown + (",..." if len(frames) > 4 else "")


def apply_prompt_travel(c, travel: Dict[int, str], frames: int, closed_loop: bool) -> None:
    """Replace each frame's conditioning by the keyframes' interpolated (per schedule step, per AND part).

    Keyframe frames keep theirs, so applying it again (the webui caches `c`) gives the same result."""
    keys = sorted(travel)
    if len(c.batch) != frames or len(keys) < 2:
        return
    parts = min(len(c.batch[k]) for k in keys)
    for part in range(parts):
        schedules = {k: c.batch[k][part].schedules for k in keys}
        ends = sorted({entry.end_at_step for s in schedules.values() for entry in s})
        per_end = {end: interpolate_conditioning({k: _at_step(schedules[k], end) for k in keys}, frames,
                                                 closed_loop) for end in ends}
        entry_type = type(schedules[keys[0]][0])
        for i in range(frames):
            if i in travel or part >= len(c.batch[i]):
                continue
            composable = c.batch[i][part]
            new_schedules = [entry_type(end, per_end[end][i]) for end in ends]
            c.batch[i][part] = type(composable)(new_schedules, composable.weight)


def _at_step(schedules, step):
    for entry in schedules:
        if step <= entry.end_at_step:
            return entry.cond
    return schedules[-1].cond
