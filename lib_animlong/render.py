"""The headless renderer: a long animation through the same engine the webui uses.

prompt -> context rows -> per-frame initial noise (noise.py) -> a k-diffusion sampler whose model function
is classifier-free guidance over the windowed denoiser (sampling/windowed.py, windows from context.plan)
around the ldm UNet with the motion modules injected (motion/inject.py) -> decode -> video writers.
The default model is the small sprite AnimateDiff shipped in models/ (lib_animlong.smallmodel).
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from . import kdiffusion
from .errors import AnimLongError
from .options import OUTPUT_FORMATS, AnimationOptions
from .video import VideoSettings

SAMPLERS = {"euler": "sample_euler", "euler_ancestral": "sample_euler_ancestral", "dpmpp_2m": "sample_dpmpp_2m"}


@dataclass(frozen=True)
class RenderSettings:
    """What a render needs besides the AnimationOptions (which hold every long-animation knob)."""
    prompt: str = "red circle on black"
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    cfg_scale: float = 3.0
    sampler: str = "euler"
    formats: Tuple[str, ...] = ("GIF", "MP4")
    out_dir: Path = Path("out")
    name: str = "animlong"
    scale: int = 8                      # nearest-neighbour upscale of the saved frames (32 px is tiny)
    motion_module: Optional[Path] = None
    device: str = "cpu"                 # "cuda" where a GPU is present
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
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise AnimLongError(f"--device {self.device}: torch sees no CUDA GPU here; use --device cpu.")


@dataclass
class RenderResult:
    frames: np.ndarray                  # (N, H, W, 3) uint8, as saved
    paths: Dict[str, Path] = field(default_factory=dict)   # format -> file (PNG: the folder)


class _EpsModel(torch.nn.Module):
    """ldm UNet as k-diffusion's inner eps model: (x, t, context=...) -> eps."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t, context):
        return self.unet(x, t, context=context)


def sample_latents(unet, motion, cond: torch.Tensor, uncond: torch.Tensor, alphas_cumprod: torch.Tensor,
                   latent_shape: Tuple[int, ...], options: AnimationOptions, settings: RenderSettings,
                   callback: Optional[Callable] = None) -> torch.Tensor:
    """The latent video (frames, *latent_shape). cond / uncond: (1, tokens, dim) prompt contexts.
    With options.keyframes_first, two passes (keyframes jointly, then every frame with them pinned)."""
    from .conditioning.pinning import keyframes_first
    from .motion.inject import inject_motion
    from .noise import initial_noise
    from .sampling.windowed import WindowedDenoiser

    device = next(unet.parameters()).device
    sampling, external = kdiffusion.load()
    denoiser = external.DiscreteEpsDDPMDenoiser(_EpsModel(unet), alphas_cumprod.to(device), quantize=True)
    sigmas = sampling.get_sigmas_karras(settings.steps, denoiser.sigma_min.item(), denoiser.sigma_max.item(),
                                        device=device)
    sampler = getattr(sampling, SAMPLERS[settings.sampler])
    unit_noise = initial_noise(settings.seed, options, latent_shape).to(device)  # drawn on the CPU: same per seed

    with inject_motion(unet, motion) as injection:
        def sample_pass(frames: Sequence[int], pins) -> torch.Tensor:
            """Sample the clip made of `frames` (absolute indices) from their initial noise."""
            frames = list(frames)
            windowed = WindowedDenoiser(denoiser, injection.slot, options, num_frames=len(frames),
                                        sigmas=sigmas, pins=pins)
            context = torch.cat([cond.expand(len(frames), -1, -1), uncond.expand(len(frames), -1, -1)])

            def guided(x, sigma):
                both = windowed(torch.cat([x, x]), torch.cat([sigma, sigma]), context=context)
                positive, negative = both.chunk(2)
                return negative + settings.cfg_scale * (positive - negative)

            x = unit_noise[frames] * sigmas[0]
            extra = {}
            if settings.sampler == "euler_ancestral":
                generator = torch.Generator().manual_seed(settings.seed + len(frames))
                extra["noise_sampler"] = lambda sigma, sigma_next: torch.randn(x.shape, generator=generator).to(device)
            with torch.no_grad():
                return sampler(guided, x, sigmas, callback=callback, disable=True, **extra)

        if options.keyframes_first:
            return keyframes_first(sample_pass, unit_noise, options)[0]
        return sample_pass(range(options.frames), None)


def passes(options: AnimationOptions) -> int:
    return 2 if options.keyframes_first else 1


def to_uint8(pixels: torch.Tensor, scale: int) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H*scale, W*scale, 3) uint8."""
    frames = ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    frames = frames.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    return frames.permute(0, 2, 3, 1).contiguous().numpy()


def render(settings: RenderSettings, options: AnimationOptions, progress: bool = True) -> RenderResult:
    """Render with the shipped sprite model and write settings.formats to settings.out_dir."""
    from .smallmodel import latent, text
    from .smallmodel.config import alphas_cumprod
    from .smallmodel.weights import load_image_model, load_motion_model
    from .video import save_video

    cond_tokens = text.tokenize(settings.prompt)   # refuses unknown words before anything heavy runs
    text.tokenize(settings.negative_prompt)
    unet, embedding = load_image_model()
    motion = load_motion_model(settings.motion_module)
    unet.to(settings.device)
    with torch.no_grad():
        tokens = torch.tensor([cond_tokens, text.tokenize(settings.negative_prompt)])
        cond, uncond = embedding(tokens).to(settings.device).chunk(2)
    bar = _progress_bar(settings.steps * passes(options), progress)
    try:
        latents = sample_latents(unet, motion, cond, uncond, alphas_cumprod(), (latent.LATENT_CHANNELS, 16, 16),
                                 options, settings, callback=lambda info: bar.update(1))
    finally:
        bar.close()
    frames = to_uint8(latent.decode(latents.cpu()), settings.scale)
    paths = save_video(list(frames), str(settings.out_dir), settings.name, settings.formats, fps=options.fps,
                       params_text=parameters_text(settings, options), settings=settings.video)
    return RenderResult(frames=frames, paths={fmt: Path(path) for fmt, path in paths.items()})


def parameters_text(settings: RenderSettings, options: AnimationOptions) -> str:
    knobs = ", ".join(f"{k}: {v}" for k, v in options.to_dict().items())
    return (f"{settings.prompt}\nNegative prompt: {settings.negative_prompt}\nSteps: {settings.steps}, "
            f"Sampler: {settings.sampler}, CFG scale: {settings.cfg_scale}, Seed: {settings.seed}, "
            f"Model: animlong sprites, {knobs}")


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc="denoising", unit="step", disable=not enabled)
