"""`python -m lib_animlong render`: a long animation, headless, through the webui's engine.

Every AnimationOptions field is a flag (--context-length, --schedule, --references, ...), derived from the
dataclass metadata. The default model is the small sprite AnimateDiff in models/ (32x32 frames, prompts
such as "red circle on gray"; saved upscaled 8x). Prompt travel works: "0: red circle on black\\n32: blue
square on black" (keyframe lines, as in the webui).

Imports only the standard library and lib_animlong.options at module level, so `--help` answers at once;
torch and the engine are imported by run().
"""
import argparse
import sys
import time
from pathlib import Path

from ..errors import AnimLongError
from ..options import OUTPUT_FORMATS, AnimationOptions, option_fields

RENDER_DEFAULTS = dict(frames=256)   # the renderer's main job: a 256-frame shot
IMG2IMG_ONLY = ("first_frame_strength", "last_frame_strength")   # no init image headless: no flag
SAMPLER_CHOICES = ("euler", "euler_ancestral", "dpmpp_2m")        # = render.SAMPLERS (not imported: torch)
DEFAULT_SAMPLER, DEFAULT_STEPS = "euler", 20                       # = render.DEFAULT_SAMPLER / DEFAULT_STEPS

SD15_MISSING = (
    "Rendering a Stable Diffusion 1.5 checkpoint headless is not available in this build: besides the UNet "
    "and VAE (which the checkpoint holds) it needs the CLIP ViT-L/14 text encoder code and its BPE tokenizer "
    "vocabulary (vocab.json + merges.txt of openai/clip-vit-large-patch14), neither of which ships with "
    "animlong or can be downloaded here. Use the AUTOMATIC1111 extension for SD1.5 checkpoints and real "
    "AnimateDiff modules, or render the built-in sprite model (omit --checkpoint).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--prompt", default="red circle on black",
                       help="what to draw; the sprite model knows colours, shapes and backgrounds. Prompt "
                            "travel: keyframe lines 'frame: prompt', e.g. $'0: red circle on black\\n128: blue "
                            "square on black'")
    model.add_argument("--negative-prompt", default="", help="what to steer away from")
    model.add_argument("--checkpoint", type=Path,
                       help="a Stable Diffusion 1.5 .safetensors/.ckpt: refused for now, the error says what "
                            "is missing (the CLIP text encoder and its tokenizer files)")
    model.add_argument("--motion-module", type=Path,
                       help="a motion-module .safetensors trained for the sprite model (default: the shipped one)")
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument("--seed", type=int, default=0)
    sampling.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    sampling.add_argument("--cfg-scale", type=float, default=3.0)
    sampling.add_argument("--sampler", default=DEFAULT_SAMPLER, choices=SAMPLER_CHOICES,
                          help=f"all with Karras sigmas; dpmpp_2m is DPM++ 2M Karras (default: {DEFAULT_SAMPLER})")
    sampling.add_argument("--device", default="cpu", help="cpu, or cuda where torch sees a GPU")
    sampling.add_argument("--threads", type=int, default=0,
                          help="CPU threads (default 0: as many as the cores other programs leave free, "
                               "re-checked every second; OMP_NUM_THREADS, when set, is kept)")
    output = parser.add_argument_group("output")
    output.add_argument("--formats", default="GIF,MP4",
                        help=f"comma-separated, from {','.join(OUTPUT_FORMATS)}")
    output.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    output.add_argument("--name", default="animlong", help="file name stem")
    output.add_argument("--scale", type=int, default=8, help="nearest-neighbour upscale of the saved frames")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    add_video_arguments(parser.add_argument_group("video encoding (as in Settings > Long animation)"))
    animation = parser.add_argument_group("animation (AnimationOptions)")
    for f in headless_fields():
        meta = f.metadata
        default = RENDER_DEFAULTS.get(f.name, f.default)
        help_text = f"{meta['help']} (default: {default})"
        if f.type is bool:
            animation.add_argument(flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                   help=help_text)
        else:
            animation.add_argument(flag(f.name), dest=f.name, type=f.type, choices=meta["choices"], default=None,
                                   help=help_text)


def add_video_arguments(group) -> None:
    """The encoder choices the README documents, one flag each (defaults: VideoSettings')."""
    from ..video import EVEN_SIZE_MODES, GIF_DITHERS, GIF_PALETTES, VideoSettings
    d = VideoSettings()
    group.add_argument("--gif-palette", choices=GIF_PALETTES, default=d.gif_palette, help="one palette for the "
                       f"whole GIF or one per frame (default: {d.gif_palette})")
    group.add_argument("--gif-dither", choices=GIF_DITHERS, default=d.gif_dither,
                       help=f"GIF dithering (default: {d.gif_dither})")
    group.add_argument("--mp4-crf", type=int, default=d.mp4_crf, help=f"MP4 CRF, 0 lossless .. 51 worst (default: "
                       f"{d.mp4_crf})")
    group.add_argument("--mp4-preset", default=d.mp4_preset, help=f"libx264 preset (default: {d.mp4_preset})")
    group.add_argument("--even-size", choices=EVEN_SIZE_MODES, default=d.even_size,
                       help=f"MP4 odd width/height: pad one edge pixel or crop one (default: {d.even_size})")
    group.add_argument("--webp-quality", type=int, default=d.webp_quality,
                       help=f"WebP quality 0..100 (default: {d.webp_quality})")
    group.add_argument("--webp-lossless", action="store_true", help="lossless WebP")
    group.add_argument("--loop", type=int, default=d.loop, help="GIF / WebP loop count, 0 forever (default: 0)")


def video_settings(args: argparse.Namespace):
    from ..video import VideoSettings
    return VideoSettings(loop=args.loop, gif_palette=args.gif_palette, gif_dither=args.gif_dither,
                         mp4_crf=args.mp4_crf, mp4_preset=args.mp4_preset, even_size=args.even_size,
                         webp_quality=args.webp_quality, webp_lossless=args.webp_lossless)

def flag(name: str) -> str:
    """The CLI flag of an AnimationOptions field: context_length -> --context-length."""
    return "--" + name.replace("_", "-")


def headless_fields():
    return [f for f in option_fields() if f.name not in IMG2IMG_ONLY]


def animation_options(args: argparse.Namespace) -> AnimationOptions:
    given = {f.name: getattr(args, f.name) for f in headless_fields() if getattr(args, f.name) is not None}
    return AnimationOptions.from_dict({**RENDER_DEFAULTS, **given})


def in_flags(message: str) -> str:
    """An engine message in the words a CLI user typed: "Option 'context_length'" -> "--context-length"."""
    for f in sorted(option_fields(), key=lambda f: -len(f.name)):
        for said, typed in ((f"Option {f.name!r}", flag(f.name)), (f"option {f.name!r}", flag(f.name)),
                            (f"{f.name!r} (", f"{flag(f.name)} ("), (f"{f.name}='", f"{flag(f.name)} '"),
                            (f"Set {f.name} ", f"Set {flag(f.name)} ")):
            message = message.replace(said, typed)
    return message


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except AnimLongError as error:
        raise AnimLongError(in_flags(str(error))) from None


def _run(args: argparse.Namespace) -> int:
    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            raise AnimLongError(f"--checkpoint {args.checkpoint}: no such file.")
        raise AnimLongError(SD15_MISSING)
    if args.motion_module is not None and not args.motion_module.is_file():
        raise AnimLongError(f"--motion-module {args.motion_module}: no such file. Give the path of a motion-module "
                            "file trained for the sprite model, or omit --motion-module for the shipped one.")
    options = animation_options(args)
    started = time.time()
    from ..render import RenderSettings, render   # torch and the engine: only now
    settings = RenderSettings(
        prompt=args.prompt, negative_prompt=args.negative_prompt, seed=args.seed, steps=args.steps,
        cfg_scale=args.cfg_scale, sampler=args.sampler, out_dir=args.out, name=args.name, scale=args.scale,
        formats=tuple(f.strip().upper() for f in args.formats.split(",") if f.strip()),
        motion_module=args.motion_module, device=args.device, threads=args.threads, video=video_settings(args))
    result = render(settings, options, progress=not args.quiet)
    for name, before in options.to_dict().items():
        after = getattr(result.options, name)
        if after != before:
            print(f"note: {flag(name)} {after} instead of {before}, to fit the motion module's positional table",
                  file=sys.stderr)
    frames, height, width, _ = result.frames.shape
    print(f"{frames} frames of {width}x{height} at {options.fps} fps in {time.time() - started:.1f} s "
          f"(schedule {options.schedule}, seed {settings.seed}, {settings.steps} {settings.sampler} steps)")
    for fmt, path in result.paths.items():
        print(f"  {fmt}: {path}")
    return 0
