"""The one HTTP route the page calls: POST /animlong/v1/summary (registered at on_app_started).

Request body (JSON): {"args": {the AnimLong API dict: "frames", "context_length", "motion_module", ...},
"steps": sampling steps, "step": 1-based step to draw (optional, default the last), "is_img2img": bool}.
Response: {"summary": lib_animlong.summary.Summary.as_dict(), "text": the plan as text, "picture": a
data: URL of the plan PNG (absent when refused), "refused": the message the generation would stop with (or
null), "script_args": the AnimLong dict of these settings for /sdapi/v1/txt2img|img2img}. A refusal is a
200 answer with "refused" set; only a malformed body is a 422.

Everything is computed by the engine (`lib_animlong.summary`); the page only shows it. Nothing here
imports the webui; the caller passes the folders and defaults.
"""
import base64
import os
from typing import Any, Callable, Dict, List, Sequence, Tuple

from ..errors import AnimLongError
from ..options import option_fields
from ..summary import ModuleInfo, plan_png, plan_text, summarise
from .motion_files import resolve
from .motion_loras import format_motion_loras
from .request import parse_args

ROUTE = "/animlong/v1/summary"
MAX_STEPS = 1000


class ModuleInfoCache:
    """ModuleInfo per file, read once per (path, mtime, size): reading a module's header is the slow part."""

    def __init__(self, capacity: int = 8):
        self.capacity = capacity
        self.entries: Dict[Tuple, ModuleInfo] = {}

    def get(self, path: str) -> ModuleInfo:
        from ..cli.plan import module_info
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
        if key not in self.entries:
            while len(self.entries) >= self.capacity:
                self.entries.pop(next(iter(self.entries)))
            self.entries[key] = module_info(path)
        return self.entries[key]


def script_args(request) -> Dict[str, Any]:
    """The AnimLong API dict of a parsed request: enable, module, formats and every option that differs
    from its default (plus frames, always), ready for alwayson_scripts.AnimLong.args[0]."""
    out: Dict[str, Any] = {"enable": request.enable, "motion_module": request.motion_module,
                           "formats": list(request.formats)}
    values = request.options.to_dict()
    for f in option_fields():
        if f.name == "frames" or values[f.name] != f.default:
            out[f.name] = values[f.name]
    if request.motion_loras:
        out["motion_loras"] = [format_motion_loras(((name, strength),)) for name, strength in request.motion_loras]
    return out


def summary_response(body: Dict[str, Any], folders: Callable[[], Sequence[str]],
                     default_formats: Callable[[], Sequence[str]], modules: ModuleInfoCache) -> Dict[str, Any]:
    """The route's answer for `body` (see the module docstring); pure apart from reading module files."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    args = body.get("args")
    args = {} if args is None else args
    if not isinstance(args, dict):
        raise ValueError("'args' must be a JSON object (the AnimLong API dict)")
    steps, step = _whole(body.get("steps", 20), "steps"), body.get("step")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"'steps' must be between 1 and {MAX_STEPS}")
    step = None if step in (None, "") else _whole(step, "step") - 1
    if step is not None:
        step = min(max(step, 0), steps - 1)
    answer: Dict[str, Any] = {"refused": None, "summary": None, "text": "", "script_args": None}
    try:
        request = parse_args([args], bool(body.get("is_img2img")), default_formats())
    except AnimLongError as error:
        answer["refused"] = str(error)
        return answer
    answer["script_args"] = script_args(request)
    module = None
    if request.motion_module:
        try:
            module = modules.get(resolve(request.motion_module, list(folders())))
        except (AnimLongError, OSError) as error:
            answer["refused"] = str(error)
    summary = summarise(request.options, steps, step, module)
    if answer["refused"]:          # the module could not be read: say so instead of "no module chosen"
        summary.fitting = f"The motion module {request.motion_module} could not be read; see below."
    if summary.refused and not answer["refused"]:
        answer["refused"] = f"AnimLong: {summary.refused}"
    answer["summary"], answer["text"] = summary.as_dict(), plan_text(summary)
    if not summary.refused:
        answer["picture"] = "data:image/png;base64," + base64.b64encode(plan_png(summary)).decode("ascii")
    return answer


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"'{name}' must be a whole number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"'{name}' must be a whole number") from None
    if not number.is_integer():
        raise ValueError(f"'{name}' must be a whole number")
    return int(number)


def register(app, folders: Callable[[], List[str]], default_formats: Callable[[], Sequence[str]]) -> None:
    """Add the route to the webui's FastAPI app (on_app_started callback body)."""
    from fastapi import Body, HTTPException

    modules = ModuleInfoCache()

    def summary(body: Dict[str, Any] = Body(...)):
        try:
            return summary_response(body, folders, default_formats, modules)
        except ValueError as error:
            raise HTTPException(status_code=422, detail=f"AnimLong summary: {error}") from None

    app.add_api_route(ROUTE, summary, methods=["POST"])


def video_links(paths: Sequence[Dict[str, str]], url_of: Callable[[str], str]) -> List[Dict[str, Any]]:
    """What the page's player needs per video: {format: {"url", "name"}} for each written file."""
    return [{fmt: {"url": url_of(path), "name": os.path.basename(path)} for fmt, path in files.items()
             if fmt != "PNG"} for files in paths]


__all__ = ["ROUTE", "register", "summary_response", "script_args", "video_links", "ModuleInfoCache"]
