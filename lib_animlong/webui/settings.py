"""The "Long animation" section of the webui settings, and reading it back.

Every video choice the README documents is here, so it is reachable in Settings > Long animation and, per
request, through the API's standard `override_settings` (e.g. `"override_settings": {"animlong_gif_dither":
"ordered"}`); the headless renderer has the same choices as flags (`--gif-dither`, ...).
"""
from typing import List

from ..options import OUTPUT_FORMATS
from ..video import EVEN_SIZE_MODES, GIF_DITHERS, GIF_PALETTES, VideoSettings
from .outputs import OutputSettings

SECTION = ("animlong", "Long animation")
MP4_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_VIDEO = VideoSettings()
DEFAULTS = {"animlong_motion_folder": "", "animlong_formats": ["GIF", "MP4"], "animlong_mp4_crf": _VIDEO.mp4_crf,
            "animlong_gif_palette": _VIDEO.gif_palette, "animlong_save_frames": False, "animlong_output_folder": "",
            "animlong_gif_dither": _VIDEO.gif_dither, "animlong_mp4_preset": _VIDEO.mp4_preset,
            "animlong_mp4_even_size": _VIDEO.even_size, "animlong_webp_quality": _VIDEO.webp_quality,
            "animlong_webp_lossless": _VIDEO.webp_lossless, "animlong_loop": _VIDEO.loop}


def register(shared) -> None:
    """on_ui_settings callback body (runs in API mode too)."""
    import gradio as gr
    info = shared.OptionInfo
    add = shared.opts.add_option

    def option(key, label, component=None, args=None, help_text=None):
        made = info(DEFAULTS[key], label, component, args, section=SECTION)
        add(key, made.info(help_text) if help_text and hasattr(made, "info") else made)

    option("animlong_motion_folder", "Extra motion-module folder (besides the extension's motion_modules/)")
    option("animlong_formats", "Default output formats", gr.CheckboxGroup, {"choices": list(OUTPUT_FORMATS)})
    option("animlong_mp4_crf", "MP4 quality (CRF: 0 lossless .. 51 worst)", gr.Slider,
           {"minimum": 0, "maximum": 51, "step": 1})
    option("animlong_mp4_preset", "MP4 encoder preset (slower: smaller files at the same quality)", gr.Dropdown,
           {"choices": list(MP4_PRESETS)})
    option("animlong_mp4_even_size", "MP4 odd width or height (yuv420p needs even sizes)", gr.Radio,
           {"choices": list(EVEN_SIZE_MODES)}, "pad: repeat the edge pixel; crop: drop one pixel")
    option("animlong_gif_palette", "GIF palette (per-frame: no banding on changing colours, larger files)", gr.Radio,
           {"choices": list(GIF_PALETTES)})
    option("animlong_gif_dither", "GIF dithering", gr.Radio, {"choices": list(GIF_DITHERS)},
           "floyd-steinberg: no banding in gradients; ordered: still areas do not shimmer; none")
    option("animlong_webp_quality", "WebP quality (0..100, ignored when lossless)", gr.Slider,
           {"minimum": 0, "maximum": 100, "step": 1})
    option("animlong_webp_lossless", "WebP lossless")
    option("animlong_loop", "GIF / WebP loop count (0: forever)", gr.Number, {"minimum": 0, "maximum": 65535,
           "precision": 0})
    option("animlong_save_frames", "Also save PNG frames")
    option("animlong_output_folder", "Output folder for videos (empty: outputs/<txt2img|img2img>-images/AnimLong/"
           "<date>)")


def _get(opts, key):
    value = getattr(opts, "data", {}).get(key)
    return DEFAULTS[key] if value is None else value


def default_formats(opts) -> List[str]:
    return list(_get(opts, "animlong_formats")) or list(DEFAULTS["animlong_formats"])


def motion_folder(opts) -> str:
    return str(_get(opts, "animlong_motion_folder") or "")


def video_settings(opts) -> VideoSettings:
    """The encoder settings; a bad value (e.g. edited config.json) is refused naming the setting."""
    return VideoSettings(loop=int(_get(opts, "animlong_loop")), gif_palette=str(_get(opts, "animlong_gif_palette")),
                         gif_dither=str(_get(opts, "animlong_gif_dither")), mp4_crf=int(_get(opts, "animlong_mp4_crf")),
                         mp4_preset=str(_get(opts, "animlong_mp4_preset")),
                         even_size=str(_get(opts, "animlong_mp4_even_size")),
                         webp_quality=int(_get(opts, "animlong_webp_quality")),
                         webp_lossless=bool(_get(opts, "animlong_webp_lossless")))


def output_settings(opts) -> OutputSettings:
    video = video_settings(opts)
    return OutputSettings(folder=str(_get(opts, "animlong_output_folder") or ""), mp4_crf=video.mp4_crf,
                          gif_palette=video.gif_palette, save_frames=bool(_get(opts, "animlong_save_frames")),
                          video=video)
