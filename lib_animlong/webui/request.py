"""The script's arguments (UI controls in order, or one API dict) as a validated `AnimRequest`.

The UI order is `control_names(is_img2img)`; the API accepts a dict with the same names as its first
argument. Nothing here imports the webui, so it is tested on its own.
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import AnimLongError
from ..options import OUTPUT_FORMATS, AnimationOptions, option_fields
from .motion_loras import format_motion_loras, parse_motion_loras

# Arguments that are not AnimationOptions fields, with their defaults.
ADAPTER_DEFAULTS = {"enable": False, "motion_module": "", "formats": None, "return_frames": False,
                    "last_frame": None, "motion_loras": None}
IMG2IMG_ONLY = ("first_frame_strength", "last_frame_strength", "last_frame")
# FreeInit re-initialises pure noise; img2img starts from the init image re-noised to a lower sigma, whose low
# frequencies already carry the image (no initialisation gap to close), and FreeInit's noise high band would
# wipe the image's detail at that sigma. So the options exist for txt2img only (lib_animlong/freeinit.py).
TXT2IMG_ONLY = ("freeinit_iterations", "freeinit_filter", "freeinit_d_s", "freeinit_d_t", "freeinit_renoise")
HEADLESS_ONLY = ("keyframes_first", "keyframe_stride")   # two sampling passes: the headless renderer only
INFOTEXT_KEY = "AnimLong"


@dataclass(frozen=True)
class AnimRequest:
    enable: bool
    motion_module: str
    formats: Tuple[str, ...]
    options: AnimationOptions
    return_frames: bool = False
    last_frame: Any = None      # img2img: an optional PIL image pinned as the last frame
    motion_loras: Tuple[Tuple[str, float], ...] = ()   # MotionLoRA (file name, strength), applied in order


def control_names(is_img2img: bool) -> List[str]:
    """The script's arguments in UI order (the order ui() returns its controls)."""
    names = ["enable", "motion_module", "formats"]
    names += [f.name for f in option_fields() if f.name not in HEADLESS_ONLY
              and (f.name not in IMG2IMG_ONLY if not is_img2img else f.name not in TXT2IMG_ONLY)]
    names += ["last_frame"] if is_img2img else []
    return names + ["motion_loras", "return_frames"]


def parse_args(args: Sequence[Any], is_img2img: bool, default_formats: Sequence[str] = ("GIF", "MP4")
               ) -> AnimRequest:
    """From positional UI args or a dict first arg (API); any bad value is refused naming its field."""
    names = control_names(is_img2img)
    if args and isinstance(args[0], dict):  # the API fills the trailing args with UI defaults: ignored
        values = dict(args[0])
        unknown = sorted(set(values) - set(names))
        headless = [name for name in unknown if name in HEADLESS_ONLY]
        if headless:
            raise AnimLongError(f"AnimLong: {headless[0]!r} is available in the headless renderer only "
                                "(python -m lib_animlong render); leave it out of the webui's arguments.")
        txt2img_only = [name for name in unknown if name in TXT2IMG_ONLY]
        if txt2img_only:
            raise AnimLongError(f"AnimLong: {txt2img_only[0]!r} (FreeInit) is for txt2img only: img2img already "
                                "starts from the init image's low frequencies, and FreeInit's fresh noise would "
                                "replace the image's detail at img2img's lower sigma. Leave it out of img2img.")
        if unknown:
            hint = " (img2img only)" if any(u in IMG2IMG_ONLY for u in unknown) else ""
            raise AnimLongError(f"AnimLong: unknown argument {unknown[0]!r}{hint}. Known arguments: "
                                f"{', '.join(names)}.")
    else:
        if len(args) > len(names):
            raise AnimLongError(f"AnimLong: got {len(args)} positional arguments but there are only "
                                f"{len(names)} ({', '.join(names)}); pass a dict with named options instead.")
        values = dict(zip(names, args))
    return _request(values, default_formats)


def _request(values: Dict[str, Any], default_formats: Sequence[str]) -> AnimRequest:
    enable = _bool("enable", values.get("enable", False))
    module = values.get("motion_module") or ""
    if not isinstance(module, str):
        raise AnimLongError(f"AnimLong: 'motion_module' must be a file name (text), got {module!r}.")
    formats = _formats(values.get("formats"), default_formats)
    option_values = {k: v for k, v in values.items() if k not in ADAPTER_DEFAULTS and v is not None}
    try:
        options = AnimationOptions.from_dict(option_values)
    except AnimLongError as error:
        raise AnimLongError(f"AnimLong: {error}") from error
    return AnimRequest(enable=enable, motion_module=module, formats=formats, options=options,
                       return_frames=_bool("return_frames", values.get("return_frames", False)),
                       last_frame=_image("last_frame", values.get("last_frame")),
                       motion_loras=parse_motion_loras(values.get("motion_loras")))


def _image(name: str, value: Any):
    """A PIL image as is; base64 text (the API; a data: URL prefix allowed) decoded; None or "" for none."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        import base64
        import binascii
        import io
        from PIL import Image, UnidentifiedImageError
        try:
            image = Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[-1], validate=False)))
            image.load()
            return image
        except (binascii.Error, UnidentifiedImageError, OSError, ValueError):
            raise AnimLongError(f"AnimLong: {name!r} is not a base64-encoded image (PNG, JPEG or WebP).") from None
    if hasattr(value, "convert") and hasattr(value, "size"):
        return value
    raise AnimLongError(f"AnimLong: {name!r} must be an image, got {type(value).__name__}.")


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value is None:
        return False
    raise AnimLongError(f"AnimLong: {name!r} must be true or false, got {value!r}.")


def _formats(value: Any, default_formats: Sequence[str]) -> Tuple[str, ...]:
    if value is None:
        value = list(default_formats)
    if isinstance(value, str):
        value = [part for part in value.replace("+", ",").split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise AnimLongError(f"AnimLong: 'formats' must be a list such as [\"GIF\", \"MP4\"], got {value!r}.")
    if not value:
        raise AnimLongError(f"AnimLong: 'formats' is empty; choose at least one of {', '.join(OUTPUT_FORMATS)}.")
    formats = []
    for item in value:
        name = str(item).strip().upper()
        if name not in OUTPUT_FORMATS:
            raise AnimLongError(f"AnimLong: 'formats' has {item!r}; choose from {', '.join(OUTPUT_FORMATS)}.")
        if name not in formats:
            formats.append(name)
    return tuple(formats)


# ---- infotext: one "AnimLong" entry holding every setting, e.g. "frames=64; fps=8; module=x.safetensors"

def infotext_value(request: AnimRequest, is_img2img: bool) -> str:
    names = control_names(is_img2img)
    parts = [f"module={request.motion_module}", f"formats={'+'.join(request.formats)}"]
    if request.motion_loras:
        parts.append(f"motion_loras={format_motion_loras(request.motion_loras)}")
    parts += [f"{name}={_plain(value)}" for name, value in request.options.to_dict().items() if name in names]
    return "; ".join(parts)


def parse_infotext_value(text: str) -> Dict[str, Any]:
    """The argument values written by infotext_value (the inverse, by name)."""
    values: Dict[str, Any] = {"enable": True}
    fields = {f.name: f for f in option_fields()}
    for part in str(text).split(";"):
        name, _, raw = part.strip().partition("=")
        if name == "module":
            values["motion_module"] = raw
        elif name == "formats":
            values["formats"] = [f for f in raw.split("+") if f]
        elif name == "motion_loras":
            values["motion_loras"] = format_motion_loras(parse_motion_loras(raw), ", ")
        elif name in fields:
            values[name] = _typed(fields[name], raw)
    return values


def _plain(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _typed(f: dataclasses.Field, raw: str) -> Any:
    try:
        if f.type is bool:
            return raw.lower() == "true"
        return f.type(raw) if f.type in (int, float) else raw
    except ValueError:
        return f.default


def default_value(name: str, default_formats: Sequence[str] = ("GIF", "MP4")) -> Optional[Any]:
    if name == "formats":
        return list(default_formats)
    if name in ADAPTER_DEFAULTS:
        return ADAPTER_DEFAULTS[name]
    return next(f.default for f in option_fields() if f.name == name)
