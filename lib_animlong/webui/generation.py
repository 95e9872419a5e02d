"""One long-animation generation in the webui, hook by hook.

Frames are the batch. Nothing on the shared model is changed between hooks: at every sampling pass
(hires fix included) `install` builds one `AnimationRun` that describes the pass explicitly (the options,
the motion module, the sampler's sigma ladder and step clock, a plan per step, the row map of every model
call) and patches only the pass's own, per-sampler objects: the k-diffusion model wrapper
(`p.sampler.model_wrap`) gets the motion module's training schedule and a `forward` that runs the window
engine, and the sampler's `func` is wrapped to learn the sigma ladder it runs and its step callback. The
motion modules are injected into the UNet once per pass, for as long as the sampler runs: when it starts
(`AnimationRun.start`, with the pass's one WindowedDenoiser) until it returns or raises (`release`, in a
`finally`); between our model calls the injected sites are the identity. So success, a failure in the UNet
or anywhere in the sampler, an interrupt or a skip all leave the model as it was. A model call the run
cannot map (not from the webui's CFG denoiser, or a chunk that splits a window) is refused with a message:
nothing passes through silently while long animation is on.

The webui catches exceptions raised by script hooks and carries on, which would give the user a silent
still image; so a hook records its error and the first model call of the generation raises it instead.
"""
import dataclasses
import functools
import inspect
from contextlib import ExitStack
from dataclasses import dataclass, field
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
from ..context.plan import PlanCache
from ..options import AnimationOptions
from ..sampling.rows import RowMap
from ..sampling.steps import StepClock, ladder_offset
from ..sampling.windowed import WindowedDenoiser
from .request import INFOTEXT_KEY, AnimRequest, infotext_value

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
    attention: str = "sdpa"                 # the temporal attention backend (the webui's own optimisation)
    run: Optional["AnimationRun"] = None    # the sampling pass in flight

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
            generation.last_latent = encode_like_init_image(p, last_image)

    p.init = init


def _repeat(batch: torch.Tensor, frames: int) -> torch.Tensor:
    if batch.shape[0] != 1:
        return batch
    return batch.expand((frames,) + tuple(batch.shape[1:])).contiguous()


def encode_like_init_image(p, image) -> torch.Tensor:
    """One PIL image -> its latent (C, h, w), the way the webui's img2img `init` encodes an init image
    (modules/processing.py StableDiffusionProcessingImg2Img.init, v1.10.1): flattened on the background
    colour, resized with p.resize_mode (images.resize_image; 3 = latent upscale, done on the latent), scaled
    to [0, 1], moved to the webui's device in the VAE's dtype and encoded by images_tensor_to_samples with the
    configured VAE encode method. So device, dtype, resize mode and encoder match the init image's."""
    from modules import devices, images, sd_samplers_common, shared
    opts = shared.opts
    resize_mode = getattr(p, "resize_mode", 0)
    image = images.flatten(image, opts.img2img_background_color)
    if resize_mode != 3:
        image = images.resize_image(resize_mode, image, p.width, p.height)
    array = np.moveaxis(np.array(image).astype(np.float32) / 255.0, 2, 0)[None]
    pixels = torch.from_numpy(array).to(shared.device, dtype=devices.dtype_vae)
    method = sd_samplers_common.approximation_indexes.get(opts.sd_vae_encode_method)
    latent = sd_samplers_common.images_tensor_to_samples(pixels, method, p.sd_model)
    if resize_mode == 3:
        latent = torch.nn.functional.interpolate(latent, size=(p.height // 8, p.width // 8), mode="bilinear")
    return latent[0]


def install(p, generation: Generation, state, noise: torch.Tensor, c, interrupted=None) -> None:
    """process_before_every_sampling: this pass's AnimationRun on its sampler (or the recorded error).
    interrupted: the webui's InterruptedException class (raised between windows on Interrupt / Skip)."""
    model_wrap = getattr(p.sampler, "model_wrap", None)
    if generation.error is not None:
        _raise_on_first_call(model_wrap, generation.error)
        return
    try:
        _install(p, generation, state, noise, c, model_wrap, interrupted)
    except Exception as error:
        generation.error = error
        _raise_on_first_call(model_wrap, error)
        raise


def _raise_on_first_call(model_wrap, error: BaseException) -> None:
    def forward(*args, **kwargs):
        raise error
    if model_wrap is not None:
        model_wrap.forward = forward


@dataclass
class AnimationRun:
    """One sampling pass (hires fix: one per pass), described explicitly and built once by `_install`.

    The window engine is told everything here; nothing is inferred from row counts or sigmas:
    - options: the animation options, fitted to the module's positional table when the generation began;
    - motion: the module the pass runs: a copy on the UNet's device and dtype made when the sampler starts
      (`start`), released when it returns or raises (`release`); the cache keeps the file's CPU copy;
    - attention: the temporal attention backend, the webui's own optimisation (webui.attention);
    - stages: model evaluations per sampler step (2 for the webui's `second_order` samplers);
    - clock: the sampler's step of every evaluation (set when the sampler starts, from the sigmas it runs);
    - total_steps: steps of the pass's full sigma ladder (img2img / hires run a suffix of it);
    - the row map of every model call, from the webui's conds (`on_cfg_denoiser`);
    - one plan per step (a context.PlanCache the pass's WindowedDenoiser holds), made once and reused by every
      evaluation and chunk;
    - model: the webui's own `model_wrap.forward`, which the window engine calls once per window (or group);
    - windowed: the pass's one WindowedDenoiser, built by `start` on the motion modules it injects into the
      UNet for the whole pass and let go by `release`, which restores the UNet.
    """
    options: AnimationOptions
    frames: int
    source: Any                                     # the cached motion module (CPU, the file's dtype)
    unet: Any
    attention: str
    stages: int
    pins: Any
    state: Any
    interrupted: Any
    denoiser: Any                                   # the pass's CFG denoiser (p.sampler.model_wrap_cfg)
    ladders: List[torch.Tensor] = field(default_factory=list)   # get_sigmas results of this pass
    clock: Optional[StepClock] = None
    total_steps: int = 0
    pending: Any = None                             # CFGDenoiserParams of the evaluation about to run
    params: Any = None                              # ... of the evaluation in flight
    row_map: Optional[RowMap] = None                # of the evaluation's whole x_in
    step: int = 0
    next_row: int = 0
    motion: Any = None                              # the placed copy while the sampler runs
    held: Optional[ExitStack] = None                # the placed copy and the injection, closed by release
    model: Any = None                               # the webui's model_wrap.forward
    windowed: Optional[WindowedDenoiser] = None     # the pass's window engine while the sampler runs
    progress: Optional["_Progress"] = None

    def start(self, sigmas) -> None:
        """The sampler starts on `sigmas`: the step clock and the plan's step count follow them, the module
        is placed on the UNet's device and dtype and injected into the UNet for the pass, and the pass's
        WindowedDenoiser is built. If anything here fails, whatever was done is undone before it raises."""
        self._let_go()      # a sampler run on this pass before that did not end through release (never expected)
        full = self.ladders[-1] if self.ladders else sigmas
        self.total_steps = len(full) - 1
        self.clock = StepClock(sigmas, self.stages, ladder_offset(full, sigmas))
        parameter = next(self.unet.parameters())
        held = ExitStack()
        try:
            self.motion = held.enter_context(placed(self.source, parameter.device, parameter.dtype))
            injected = held.enter_context(inject_motion(self.unet, self.motion, attention=self.attention))
            self.progress = _Progress(self.model, injected.slot, self.state)
            self.windowed = WindowedDenoiser(self.progress, injected.slot, self.options, num_frames=self.frames,
                                             planner=PlanCache(self.options), total_steps=self.total_steps,
                                             pins=self.pins, between_windows=self.check_interrupt)
        except BaseException:
            self.motion = self.progress = self.windowed = None
            held.close()
            raise
        self.held = held

    def evaluate(self, x: torch.Tensor, sigma, **kwargs) -> torch.Tensor:
        """One model call of the pass (the webui's model_wrap.forward): its rows mapped to frames, then the
        window engine on the step's plan."""
        self.begin_evaluation()
        row_map = self.chunk(x)
        if self.windowed is None:
            raise AnimLongError("AnimLong: the model was called before the sampler started; this sampler is not "
                                "supported. Choose a k-diffusion sampler such as Euler, DPM++ 2M or Heun.")
        self.progress.start(self.step, self.total_steps, len(self.windowed.windows(self.step)))
        return self.windowed(x, sigma, step=self.step, row_map=row_map, **kwargs)

    def on_cfg_denoiser(self, params) -> None:
        """The webui's CFG denoiser is about to evaluate: its x_in, sigma and conds (read at the first model
        call, after every other extension's callback has run)."""
        self.pending = params

    def begin_evaluation(self) -> None:
        """At the first model call of a CFG evaluation: the row map of its x_in and the sampler's step."""
        params, self.pending = self.pending, None
        if params is None:
            if self.params is None:
                raise AnimLongError("AnimLong: the model was called without the webui's CFG denoiser announcing "
                                    "the call (on_cfg_denoiser), so its rows cannot be mapped to frames. Another "
                                    "extension is calling the model itself; disable it while long animation is on.")
            return
        if self.clock is None:
            raise AnimLongError("AnimLong: the sampler evaluated the model before it started sampling; it is not "
                                "supported. Choose a k-diffusion sampler such as Euler, DPM++ 2M or Heun.")
        repeats = _repeats(self.denoiser, self.frames)
        row_map = RowMap.cfg(repeats, uncond=True)
        if params.x.shape[0] != row_map.rows:
            raise AnimLongError(
                f"AnimLong: the webui's CFG denoiser laid out {params.x.shape[0]} rows, but {self.frames} frames with "
                f"{sum(repeats)} prompt rows (AND parts) and {self.frames} negative-prompt rows make {row_map.rows}. "
                "An extension or an edit model changes the batch; long animation cannot map its rows.")
        self.params, self.row_map, self.next_row = params, row_map, 0
        self.step = self.clock.evaluation(params.sigma)

    def chunk(self, x: torch.Tensor) -> RowMap:
        """The row map of one model call: which rows of the evaluation's x_in it holds."""
        base = self.params.x
        rows = x.shape[0]
        offset = _view_offset(x, base)
        if offset is None:
            start = self.next_row
            if start + rows > base.shape[0] or not torch.equal(x, base[start:start + rows]):
                raise AnimLongError("AnimLong: a model call holds rows that are not part of what the webui's CFG "
                                    "denoiser prepared for this step, so they cannot be mapped to frames. Another "
                                    "extension is calling the model; disable it while long animation is on.")
            offset = start
        self.next_row = offset + rows
        return self.row_map.slice(offset, offset + rows)

    def check_interrupt(self) -> None:
        """Between windows: Interrupt / Skip stop the step now (the webui's own exception)."""
        if self.state is not None and (getattr(self.state, "interrupted", False)
                                       or getattr(self.state, "skipped", False)):
            raise (self.interrupted or AnimLongError)("AnimLong: interrupted between windows.")

    def release(self) -> None:
        """End of the pass (any exit of the sampler): the UNet is restored, the plans, the window engine and
        the module's device copy are let go."""
        self.pending = self.params = None
        self._let_go()

    def _let_go(self) -> None:
        held, self.held = self.held, None
        self.motion = self.windowed = self.progress = None
        if held is not None:
            held.close()


def _repeats(denoiser, frames: int) -> List[int]:
    """Per frame, its number of AND parts, from the conds the CFG denoiser reconstructs
    (sampler.sampler_extra_args['cond'].batch, as prompt_parser.reconstruct_multicond_batch reads it)."""
    cond = getattr(getattr(denoiser, "sampler", None), "sampler_extra_args", {}).get("cond")
    batch = getattr(cond, "batch", None)
    if batch is None:
        raise AnimLongError("AnimLong: the webui's conds are not a multi-cond batch (SDXL or an edit model?); "
                            "long animation needs an SD1.5 checkpoint.")
    if len(batch) != frames:
        raise AnimLongError(f"AnimLong: the webui sent prompts for {len(batch)} images but the animation has "
                            f"{frames} frames; another extension changed the batch.")
    return [len(parts) for parts in batch]


def _view_offset(x: torch.Tensor, base: torch.Tensor) -> Optional[int]:
    """The first row of base that x is a row slice of (a view sharing base's storage), else None."""
    if x.dim() != base.dim() or x.shape[1:] != base.shape[1:] or x.dtype != base.dtype or x.numel() == 0:
        return None
    try:
        same = x.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()
    except (AttributeError, RuntimeError):
        return None
    row_bytes = base.stride(0) * base.element_size()
    delta = x.data_ptr() - base.data_ptr()
    if not same or x.stride() != base.stride() or row_bytes == 0 or delta % row_bytes:
        return None
    offset = delta // row_bytes
    return offset if 0 <= offset and offset + x.shape[0] <= base.shape[0] else None


def _stages(sampler) -> int:
    """Model evaluations per sampler step: 2 for the webui's `second_order` samplers (Heun, DPM2, DPM2 a,
    DPM++ 2S a, DPM++ SDE, Restart; modules/sd_samplers_kdiffusion.py), else 1."""
    options = getattr(getattr(sampler, "config", None), "options", None) or {}
    return 2 if options.get("second_order", False) else 1


def _install(p, generation: Generation, state, noise, c, model_wrap, interrupted) -> None:
    if model_wrap is None or not hasattr(model_wrap, "sigmas"):
        raise AnimLongError(f"AnimLong: the sampler {p.sampler_name!r} is not supported; choose a k-diffusion "
                            "sampler such as Euler, Euler a or DPM++ 2M.")
    unet = _unet(p.sd_model)
    frames = generation.frames
    if noise.shape[0] != frames:
        raise AnimLongError(f"AnimLong: the batch has {noise.shape[0]} images but the animation {frames} frames; "
                            "another extension changed the batch size.")
    options = generation.request.options      # fitted to the module in begin()
    pins = None
    if not getattr(p, "is_hr_pass", False) and (generation.first_latent is not None
                                                 or generation.last_latent is not None):
        pins = image_pins(options, noise.cpu(), generation.first_latent, generation.last_latent)
    run = AnimationRun(options=options, frames=frames, source=generation.motion, unet=unet,
                       attention=generation.attention, stages=_stages(p.sampler),
                       pins=pins, state=state, interrupted=interrupted,
                       denoiser=getattr(p.sampler, "model_wrap_cfg", None))
    _wrap_sampler_func(p.sampler, run, freeinit_plan(p, options))
    _use_training_schedule(model_wrap, generation.motion)
    _record_sigmas(p.sampler, run.ladders)
    if options.noise == "freenoise":
        noise.copy_(freenoise(noise.cpu(), options.context_length, max(1, options.context_length // 4),
                              int(p.seeds[0])).to(noise))
    if generation.travel and c is not None:
        apply_prompt_travel(c, generation.travel, frames, options.closed_loop)
    run.model = model_wrap.forward
    generation.run = run

    def forward(x, sigma, **kwargs):
        return run.evaluate(x, sigma, **kwargs)

    model_wrap.forward = forward


def on_cfg_denoiser(params) -> None:
    """script_callbacks.on_cfg_denoiser: hands the CFG denoiser's layout to the pass it belongs to."""
    denoiser = getattr(params, "denoiser", None)
    generation = getattr(getattr(denoiser, "p", None), "animlong", None)
    run = getattr(generation, "run", None)
    if run is not None and run.denoiser is denoiser:
        run.on_cfg_denoiser(params)


def _wrap_sampler_func(sampler, run: AnimationRun, freeinit: Optional["FreeInitPlan"] = None) -> None:
    """The sampler's function (a k-diffusion sampler) on this sampler object only: the sigmas it runs start
    the run's step clock, its step callback advances it. functools.wraps keeps the signature the webui
    inspects to choose the arguments it passes.

    freeinit: when given (txt2img's first pass with freeinit_iterations K > 0), the function runs K + 1 times
    on the same sigmas, model wrapper and AnimationRun, each run after the first from FreeInit's
    re-initialisation of the previous result; the webui's progress (state.sampling_step of
    state.sampling_steps) counts all runs. An Interrupt or Skip between runs returns the last finished run.
    The run's module copy is released once, when the last run returns or raises."""
    original = sampler.func
    signature = inspect.signature(original)
    if "sigmas" not in signature.parameters or "callback" not in signature.parameters:
        raise AnimLongError(f"AnimLong: the sampler {getattr(sampler, 'funcname', original)!r} has no fixed sigma "
                            "ladder to plan windows on (DPM fast / adaptive); choose Euler, DPM++ 2M or Heun.")
    runs = 1 + (freeinit.iterations if freeinit is not None else 0)

    @functools.wraps(original)
    def func(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        sigmas = bound.arguments["sigmas"]
        run.start(sigmas)
        callback = bound.arguments.get("callback")
        steps = len(sigmas) - 1
        current = [0]       # the FreeInit run in flight (0: the first)

        def step_done(d):
            run.clock.on_callback(d["i"])
            result = callback(d) if callback is not None else None
            if runs > 1:
                _show_sampling_step(run.state, current[0] * steps + d["i"], runs * steps)
            return result
        bound.arguments["callback"] = step_done
        try:
            if runs > 1:
                _show_sampling_step(run.state, 0, runs * steps)
            x_in = bound.arguments[_latent_argument(signature)]
            x_in = x_in.clone() if runs > 1 else x_in      # the first run's start, kept whatever the sampler does
            x = original(*bound.args, **bound.kwargs)
            for iteration in range(1, runs):
                if _stopped(run.state):
                    break       # Interrupt / Skip between runs: the last finished run is the result
                bound.arguments[_latent_argument(signature)] = freeinit.next_latents(x, x_in, sigmas[0], iteration)
                _restart_pass(run)
                current[0] = iteration
                _show_sampling_step(run.state, iteration * steps, runs * steps)
                x = original(*bound.args, **bound.kwargs)
            return x
        finally:
            run.release()

    sampler.func = func


@dataclass(frozen=True)
class FreeInitPlan:
    """FreeInit (lib_animlong/freeinit.py) for one sampling pass: `iterations` extra runs, the filter, and
    the seed of every frame (p.seeds: seed + i), from which each run's fresh noise is drawn."""
    iterations: int
    frames: int
    seeds: tuple
    kind: str
    d_s: float
    d_t: float
    renoise: str = "initial"

    def next_latents(self, x0: torch.Tensor, x_in: torch.Tensor, sigma, iteration: int) -> torch.Tensor:
        """The next run's start: the low band re-noised with x_in / sigma, the noise the first run started
        from (x_in = noise * sigmas[0] in txt2img), or with renoise "fresh" a new draw; the high band's fresh
        noise per frame seed and iteration, drawn on the CPU."""
        from ..freeinit import fresh_noise, reinitialise
        sigma = float(sigma)

        def drawn(stream: int) -> torch.Tensor:     # per frame seed, the same for every video of the batch
            noise = fresh_noise(self.seeds, iteration, tuple(x0.shape[1:]), stream=stream)
            return noise.repeat(x0.shape[0] // len(self.seeds), 1, 1, 1).to(x0)
        fresh = drawn(0)
        low = drawn(1) if self.renoise == "fresh" else x_in / sigma
        return reinitialise(x0, self.frames, sigma, low, fresh, self.kind, self.d_s, self.d_t)


def freeinit_plan(p, options: AnimationOptions) -> Optional[FreeInitPlan]:
    """The FreeInit plan of this sampling pass: None when freeinit_iterations is 0, on the hires pass (which
    starts from the upscaled video re-noised, not from pure noise) and in img2img (whose request refuses
    the options; see request.TXT2IMG_ONLY)."""
    if options.freeinit_iterations == 0 or getattr(p, "is_hr_pass", False) or hasattr(p, "init_images"):
        return None
    seeds = tuple(int(seed) for seed in p.seeds)
    if len(seeds) != options.frames:
        raise AnimLongError(f"AnimLong: FreeInit needs one seed per frame; the batch has {len(seeds)} seeds for "
                            f"{options.frames} frames (another extension changed the batch).")
    return FreeInitPlan(options.freeinit_iterations, options.frames, seeds, options.freeinit_filter,
                        options.freeinit_d_s, options.freeinit_d_t, options.freeinit_renoise)


def _latent_argument(signature: inspect.Signature) -> str:
    """The name of a k-diffusion sampler's latent argument: the second parameter (model, x, sigmas, ...)."""
    return list(signature.parameters)[1]


def _restart_pass(run: AnimationRun) -> None:
    """Before a FreeInit run after the first: the step clock and the CFG denoiser's step counter (which the
    webui's sampler.initialize sets to 0; prompt editing and skip_early_cond read it) start again."""
    clock = run.clock
    run.clock = StepClock(clock.sigmas, clock.stages, clock.offset)
    if run.denoiser is not None and hasattr(run.denoiser, "step"):
        run.denoiser.step = 0


def _show_sampling_step(state, step: int, steps: int) -> None:
    """The webui's progress bar: step `step` of `steps` over every FreeInit run."""
    if state is not None:
        state.sampling_steps = steps
        state.sampling_step = step


def _stopped(state) -> bool:
    return state is not None and (getattr(state, "interrupted", False) or getattr(state, "skipped", False))


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


def _record_sigmas(sampler, ladder: List[torch.Tensor]) -> None:
    """The sigma ladder the sampler computes for this pass (the window plan's steps follow it)."""
    webui_get_sigmas = sampler.get_sigmas

    def get_sigmas(p, steps):
        sigmas = webui_get_sigmas(p, steps)
        ladder.append(sigmas)
        return sigmas

    sampler.get_sigmas = get_sigmas


class _Progress:
    """Calls the model and shows the window being computed in the webui's status text."""

    def __init__(self, model, slot, state):
        self.model, self.slot, self.state = model, slot, state
        self.text, self.count, self.index = "", 0, 0

    def start(self, step: int, total_steps: int, windows: int) -> None:
        self.count, self.index = windows, 0
        self.text = f"AnimLong: step {step + 1}/{total_steps}"

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
