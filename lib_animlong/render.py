"""The headless renderer: a long animation through the same engine the webui uses.

prompt (or prompt travel keyframes) -> per-frame context rows -> per-frame initial noise (noise.py) -> a
k-diffusion sampler whose model function is classifier-free guidance over the windowed denoiser
(sampling/windowed.py, windows from context.plan) around the ldm UNet with the motion modules injected
(motion/inject.py) -> decode -> video writers (files appear whole or not at all).
The default model is the small sprite AnimateDiff shipped in models/ (lib_animlong.smallmodel).

Everything that can be refused is refused before sampling: unknown words and bad keyframe lines, an output
folder that cannot be written, options that do not fit the motion module's positional table (fitted when
they can be: `fitting.fit_options`), and every step's window plan (planned once per render).
"""
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from . import kdiffusion
from .errors import AnimLongError
from .fitting import fit_options
from .context.plan import PlanCache
from .options import OUTPUT_FORMATS, AnimationOptions
from .video import VideoSettings

SAMPLERS = {"euler": "sample_euler", "euler_ancestral": "sample_euler_ancestral", "dpmpp_2m": "sample_dpmpp_2m"}
ANCESTRAL_SAMPLERS = ("euler_ancestral",)   # samplers that add fresh noise at every step
# Euler, 20 steps: against 12 Euler / 12 DPM++ 2M Karras steps at 256 frames (benchmarks/quality.py's figures,
# RESULTS.md "Render speed"), fewer steps slow the sprite (median 0.59 -> 0.43 / 0.32 px/frame), raise the
# seam (2.3 -> 2.7 / 3.2) and the spike (13 -> 17 / 23): the saved evaluations would cost quality.
DEFAULT_SAMPLER = "euler"
DEFAULT_STEPS = 20


@dataclass(frozen=True)
class RenderSettings:
    """What a render needs besides the AnimationOptions (which hold every long-animation knob)."""
    prompt: str = "red circle on black"
    negative_prompt: str = ""
    seed: int = 0
    steps: int = DEFAULT_STEPS
    cfg_scale: float = 3.0
    sampler: str = DEFAULT_SAMPLER      # all with Karras sigmas; dpmpp_2m = DPM++ 2M Karras
    formats: Tuple[str, ...] = ("GIF", "MP4")
    out_dir: Path = Path("out")
    name: str = "animlong"
    scale: int = 8                      # nearest-neighbour upscale of the saved frames (32 px is tiny)
    motion_module: Optional[Path] = None
    device: str = "cpu"                 # "cuda" where a GPU is present
    threads: int = 0                    # CPU threads for torch; 0: adapt to the cores other programs leave free
    video: Optional[VideoSettings] = None   # encoder settings (GIF dithering, MP4 CRF, ...); None: defaults

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise AnimLongError(f"Unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}.")
        unknown = [f for f in self.formats if f not in OUTPUT_FORMATS]
        if unknown or not self.formats:
            raise AnimLongError(f"Unknown output format {unknown[0] if unknown else '(none given)'!r}; "
                                f"choose from {', '.join(OUTPUT_FORMATS)}.")
        if self.steps < 1:
            raise AnimLongError(f"--steps must be at least 1, got {self.steps}.")
        if self.scale < 1:
            raise AnimLongError(f"--scale must be at least 1, got {self.scale}.")
        if self.threads < 0:
            raise AnimLongError(f"--threads must be 0 (adapt) or more, got {self.threads}.")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise AnimLongError(f"--device {self.device}: torch sees no CUDA GPU here; use --device cpu.")


@dataclass
class RenderResult:
    frames: np.ndarray                  # (N, H, W, 3) uint8, as saved
    paths: Dict[str, Path] = field(default_factory=dict)   # format -> file (PNG: the folder)
    options: Optional[AnimationOptions] = None             # the options as used (fitted to the module)
    seconds: Dict[str, float] = field(default_factory=dict)  # wall time of load / sample / decode / write
    adjustments: Tuple[str, ...] = ()   # options fitted to the motion module's positional table (fitting.py)


class _EpsModel(torch.nn.Module):
    """ldm UNet as k-diffusion's inner eps model: (x, t, context=...) -> eps. Before each call the thread
    governor (if any) may change torch's CPU thread count."""

    def __init__(self, unet, governor=None):
        super().__init__()
        self.unet = unet
        self.governor = governor

    def forward(self, x, t, context):
        if self.governor is not None:
            self.governor.update()
        return self.unet(x, t, context=context)


def sample_latents(unet, motion, cond: torch.Tensor, uncond: torch.Tensor, alphas_cumprod: torch.Tensor,
                   latent_shape: Tuple[int, ...], options: AnimationOptions, settings: RenderSettings,
                   callback: Optional[Callable] = None, governor=None,
                   planner: Optional[PlanCache] = None) -> torch.Tensor:
    """The latent video (frames, *latent_shape).

    cond / uncond: per-frame prompt contexts (frames, tokens, dim), or (1, tokens, dim) for every frame.
    With options.keyframes_first, two passes (keyframes jointly, then every frame with them pinned).
    With options.freeinit_iterations K > 0, each pass samples K + 1 times, every run after the first from
    FreeInit's re-initialisation of the previous result (freeinit.py: the low band of it re-noised with the
    pass's initial noise, the high band of fresh noise from each frame's seed and the iteration).
    Ancestral samplers draw each frame's fresh noise from that frame's own generator (noise.py), so frame
    i's noise is the same whatever the animation's length.
    """
    from .conditioning.pinning import keyframes_first
    from .freeinit import fresh_noise, reinitialise
    from .motion.inject import inject_motion
    from .noise import ancestral_noise_sampler, initial_noise
    from .sampling.windowed import WindowedDenoiser

    device = next(unet.parameters()).device
    cond, uncond = (c.expand(options.frames, -1, -1) if c.shape[0] == 1 else c for c in (cond, uncond))
    sampling, external = kdiffusion.load()
    denoiser = external.DiscreteEpsDDPMDenoiser(_EpsModel(unet, governor), alphas_cumprod.to(device),
                                                quantize=True)
    sigmas = sampling.get_sigmas_karras(settings.steps, denoiser.sigma_min.item(), denoiser.sigma_max.item(),
                                        device=device)
    sampler = getattr(sampling, SAMPLERS[settings.sampler])
    unit_noise = initial_noise(settings.seed, options, latent_shape).to(device)  # drawn on the CPU: same per seed
    if planner is None:
        planner = PlanCache(options)
        planner.prepare(settings.steps, options.frames)

    with inject_motion(unet, motion) as injection:
        def sample_pass(frames: Sequence[int], pins) -> torch.Tensor:
            """Sample the clip made of `frames` (absolute indices) from their initial noise."""
            frames = list(frames)
            windowed = WindowedDenoiser(denoiser, injection.slot, options, num_frames=len(frames),
                                        sigmas=sigmas, pins=pins, planner=planner)
            context = torch.cat([cond[frames], uncond[frames]])

            def guided(x, sigma):
                both = windowed(torch.cat([x, x]), torch.cat([sigma, sigma]), context=context)
                positive, negative = both.chunk(2)
                return negative + settings.cfg_scale * (positive - negative)

            x = unit_noise[frames] * sigmas[0]
            extra = {}
            if settings.sampler in ANCESTRAL_SAMPLERS:
                extra["noise_sampler"] = ancestral_noise_sampler(settings.seed, frames, latent_shape, device)
            with torch.inference_mode():
                x = sampler(guided, x, sigmas, callback=callback, disable=True, **extra)
                for iteration in range(1, options.freeinit_iterations + 1):    # FreeInit: sample again
                    seeds = [settings.seed + f for f in frames]
                    fresh = fresh_noise(seeds, iteration, latent_shape).to(device)
                    low = unit_noise[frames]
                    if options.freeinit_renoise == "fresh":
                        low = fresh_noise(seeds, iteration, latent_shape, stream=1).to(device)
                    x = reinitialise(x, len(frames), sigmas[0], low, fresh,
                                     options.freeinit_filter, options.freeinit_d_s, options.freeinit_d_t)
                    x = sampler(guided, x, sigmas, callback=callback, disable=True, **extra)
            return x

        if options.keyframes_first:
            return keyframes_first(sample_pass, unit_noise, options)[0]
        return sample_pass(range(options.frames), None)


def passes(options: AnimationOptions) -> int:
    """Sampling runs of a render: 2 passes with keyframes first, each run 1 + freeinit_iterations times."""
    return (2 if options.keyframes_first else 1) * (1 + options.freeinit_iterations)


def to_uint8(pixels: torch.Tensor, scale: int) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H*scale, W*scale, 3) uint8."""
    frames = ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    frames = frames.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    return frames.permute(0, 2, 3, 1).contiguous().numpy()


def prompt_keyframes(prompt: str, options: AnimationOptions, what: str = "--prompt") -> Dict[int, list]:
    """{frame: the sprite model's token ids}: one entry at frame 0 for a plain prompt, one per keyframe line
    for prompt travel ("0: red circle on black\\n32: blue square on black"). Unknown words and bad keyframe
    lines are refused, naming the keyframe."""
    from .conditioning.prompt_travel import parse_prompt_travel
    from .smallmodel import text
    keyframes = parse_prompt_travel(prompt, options.frames)
    if keyframes is None:
        return {0: text.tokenize(prompt)}
    tokens = {}
    for frame, keyframe_prompt in keyframes.items():
        try:
            tokens[frame] = text.tokenize(keyframe_prompt)
        except AnimLongError as error:
            raise AnimLongError(f"{what}, keyframe {frame} ({keyframe_prompt!r}): {error}") from None
    return tokens


def encode_prompt(embedding, keyframes: Dict[int, list], options: AnimationOptions) -> torch.Tensor:
    """Per-frame context (frames, 3, dim): keyframes interpolated (slerp) in between, as in the webui."""
    from .conditioning.prompt_travel import interpolate_conditioning
    with torch.inference_mode():
        encoded = embedding(torch.tensor(list(keyframes.values())))
    return interpolate_conditioning(dict(zip(keyframes, encoded)), options.frames, options.closed_loop)


def render(settings: RenderSettings, options: AnimationOptions, progress: bool = True) -> RenderResult:
    """Render with the shipped sprite model and write settings.formats to settings.out_dir.

    Raises AnimLongError, before any sampling, for what it cannot do; files appear whole or not at all."""
    from .smallmodel import latent
    from .smallmodel.config import alphas_cumprod
    from .smallmodel.weights import load_image_model, load_motion_model
    from .video import check_output_folder, save_video

    seconds, started = {}, time.perf_counter()
    cond_keyframes = prompt_keyframes(settings.prompt, options)   # cheap refusals first
    uncond_keyframes = prompt_keyframes(settings.negative_prompt, options, "--negative-prompt")
    try:
        check_output_folder(str(settings.out_dir))
    except AnimLongError as error:
        raise AnimLongError(f"--out: {error}") from None
    governor = ThreadGovernor.for_settings(settings)
    unet, embedding = load_image_model()
    motion = load_motion_model(settings.motion_module)
    fitted = fit_options(options, motion.spec.pe_length)   # refuses what cannot fit before any sampling
    options = fitted.options
    unet.to(settings.device)
    cond = encode_prompt(embedding, cond_keyframes, options).to(settings.device)
    uncond = encode_prompt(embedding, uncond_keyframes, options).to(settings.device)
    planner = PlanCache(options)
    planner.prepare(settings.steps, options.frames)   # every step's windows, refused here if they cannot be made
    seconds["load"] = time.perf_counter() - started
    bar = _progress_bar(settings.steps * passes(options), progress)
    try:
        latents = sample_latents(unet, motion, cond, uncond, alphas_cumprod(), (latent.LATENT_CHANNELS, 16, 16),
                                 options, settings, callback=lambda info: bar.update(1), governor=governor,
                                 planner=planner)
    finally:
        bar.close()
        if governor is not None:
            governor.restore()
    seconds["sample"] = time.perf_counter() - started - seconds["load"]
    frames = to_uint8(latent.decode(latents.cpu()), settings.scale)
    written = time.perf_counter()
    paths = save_video(list(frames), str(settings.out_dir), settings.name, settings.formats, fps=options.fps,
                       params_text=parameters_text(settings, options), settings=settings.video)
    seconds["write"] = time.perf_counter() - written
    return RenderResult(frames=frames, paths={fmt: Path(path) for fmt, path in paths.items()}, options=options,
                        seconds=seconds, adjustments=fitted.adjustments)


def parameters_text(settings: RenderSettings, options: AnimationOptions) -> str:
    knobs = ", ".join(f"{k}: {v}" for k, v in options.to_dict().items())
    prompt = settings.prompt.replace("\n", " / ")
    return (f"{prompt}\nNegative prompt: {settings.negative_prompt}\nSteps: {settings.steps}, "
            f"Sampler: {settings.sampler}, CFG scale: {settings.cfg_scale}, Seed: {settings.seed}, "
            f"Model: animlong sprites, {knobs}")


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc="denoising", unit="step", disable=not enabled, dynamic_ncols=True)


class ThreadGovernor:
    """Picks torch's CPU thread count between model calls from the cores other programs leave free.

    Why: torch's OpenMP threads wait for each other at the end of every operation; when another program
    holds a core, the thread that lost it stalls the rest, and two threads on a 2-core machine next to one
    busy program ran ~5x slower than one thread, and 10-50x slower under heavy load (bench_render.py
    measures this). It starts at one thread (a wrong guess there costs at most the idle cores, a wrong
    guess the other way the collapse) and every `interval` seconds reads the machine's busy CPU time (Linux
    /proc/stat) less this process's own: threads = the cores left free by the others, rounded, at least 1,
    at most `cores`.

    `read` returns (busy seconds of all CPUs, seconds used by this process) and may be replaced (tests).
    """

    def __init__(self, cores: int, read: Optional[Callable[[], Tuple[float, float]]] = None,
                 clock: Callable[[], float] = time.monotonic, interval: float = 1.0,
                 set_threads: Callable[[int], None] = torch.set_num_threads):
        self.cores, self.read, self.clock, self.interval = cores, read or _cpu_seconds, clock, interval
        self.set_threads = set_threads
        self.previous_threads = torch.get_num_threads()
        self.threads = 1
        self.set_threads(1)
        busy, own = self.read()
        self.last = (self.clock(), busy, own)

    @classmethod
    def for_settings(cls, settings: RenderSettings) -> Optional["ThreadGovernor"]:
        """None (torch's threads left alone) on a GPU, where OMP_NUM_THREADS is set, or off Linux; a fixed
        count with --threads N; else adaptive."""
        if not settings.device.startswith("cpu"):
            return None
        if settings.threads:
            torch.set_num_threads(settings.threads)
            return None
        if os.environ.get("OMP_NUM_THREADS") or not os.path.exists("/proc/stat"):
            return None
        return cls(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

    def update(self) -> int:
        now = self.clock()
        elapsed = now - self.last[0]
        if elapsed < self.interval:
            return self.threads
        busy, own = self.read()
        others = max(0.0, (busy - self.last[1]) - (own - self.last[2])) / elapsed
        threads = int(min(self.cores, max(1, round(self.cores - others))))
        if threads != self.threads:
            self.threads = threads
            self.set_threads(threads)
        self.last = (now, busy, own)
        return self.threads

    def restore(self) -> None:
        self.set_threads(self.previous_threads)


def _cpu_seconds() -> Tuple[float, float]:
    """(busy CPU seconds of the whole machine since boot, CPU seconds used by this process)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)        # idle + iowait
    busy = sum(fields[:8]) - idle                                   # user..steal; guest is inside user
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system
