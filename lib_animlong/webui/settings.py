"""The "Long animation" section of the webui settings, and reading it back."""
from typing import List

from ..options import OUTPUT_FORMATS
from ..video import GIF_PALETTES
from .outputs import OutputSettings

SECTION = ("animlong", "Long animation")
DEFAULTS = {"animlong_motion_folder": "", "animlong_formats": ["GIF", "MP4"], "animlong_mp4_crf": 18,
            "animlong_gif_palette": "global", "animlong_save_frames": False, "animlong_output_folder": ""}


def register(shared) -> None:
    """on_ui_settings callback body (runs in API mode too)."""
    import gradio as gr
    info = shared.OptionInfo
    add = shared.opts.add_option
    add("animlong_motion_folder", info(DEFAULTS["animlong_motion_folder"],
        "Extra motion-module folder (besides the extension's motion_modules/)", section=SECTION))
    add("animlong_formats", info(DEFAULTS["animlong_formats"], "Default output formats", gr.CheckboxGroup,
        {"choices": list(OUTPUT_FORMATS)}, section=SECTION))
    add("animlong_mp4_crf", info(DEFAULTS["animlong_mp4_crf"], "MP4 quality (CRF: 0 lossless .. 51 worst)",
        gr.Slider, {"minimum": 0, "maximum": 51, "step": 1}, section=SECTION))
    add("animlong_gif_palette", info(DEFAULTS["animlong_gif_palette"], "GIF palette (per-frame: no banding on "
        "changing colours, larger files)", gr.Radio, {"choices": list(GIF_PALETTES)}, section=SECTION))
    add("animlong_save_frames", info(DEFAULTS["animlong_save_frames"], "Also save PNG frames", section=SECTION))
    add("animlong_output_folder", info(DEFAULTS["animlong_output_folder"], "Output folder for videos (empty: "
        "outputs/<txt2img|img2img>-images/AnimLong/<date>)", section=SECTION))


def _get(opts, key):
    value = getattr(opts, "data", {}).get(key)
    return DEFAULTS[key] if value is None else value


def default_formats(opts) -> List[str]:
    return list(_get(opts, "animlong_formats")) or list(DEFAULTS["animlong_formats"])


def motion_folder(opts) -> str:
    return str(_get(opts, "animlong_motion_folder") or "")


def output_settings(opts) -> OutputSettings:
    return OutputSettings(folder=str(_get(opts, "animlong_output_folder") or ""),
                          mp4_crf=int(_get(opts, "animlong_mp4_crf")),
                          gif_palette=str(_get(opts, "animlong_gif_palette")),
                          save_frames=bool(_get(opts, "animlong_save_frames")))
