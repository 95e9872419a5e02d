"""What a choice of options will do, before anything runs: the summary the UI, the API and the CLI show.

`summarise(options, total_steps, ...)` answers: how long the video is, how many windows each step
computes, how many frames each window sees (its own plus its references), which motion module family and
positional table the options are fitted to and how, and — instead of raising — why a choice will be
refused. `plan_text` and `plan_png` draw the windows of one step (frames across, windows down, references
marked). All of it comes from `context.plan`; nothing here re-implements a schedule.

The fitting to the module's positional table is the one sampling uses (`fitting.fit_options`).
"""
import io
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .context.plan import plan
from .context.recipe import REFERENCE_ONLY
from .context.window import Window
from .errors import AnimLongError
from .fitting import fit_options
from .options import AnimationOptions

PLAN_PNG_MAX_WIDTH = 960      # px: wider plans are binned (several frames per pixel column)
PLAN_PNG_MAX_HEIGHT = 540     # px: rows shrink (down to 1 px) to keep many windows in view
TEXT_COLUMNS = 64             # characters of the frame bar in plan_text

OWN = (52, 120, 246)          # colours of the picture: a window's own (output) frames
ANCHOR_ONLY = (150, 150, 150)  # frames a window computes only to be read by later windows
REFERENCE = (245, 166, 35)    # frames a window reads from earlier windows (reference buffers)
GRID = (225, 225, 225)


@dataclass(frozen=True)
class ModuleInfo:
    """The motion module the options are for: what `inspect` reports (family, version, pe_length)."""
    name: str
    family: str
    version: str
    pe_length: int           # rows of the positional table: the longest window the module knows


@dataclass
class Summary:
    """JSON-ready description of the options (see `as_dict`); `refused` is None when they will run."""
    frames: int
    fps: int
    duration_s: float
    total_steps: int
    step: int
    context_length: int                   # frames of one window, as used (min(context length, frames))
    windows_per_step: List[int]           # windows computed at each step
    calls_per_step: List[int]             # windows that output frames (the rest only feed references)
    sees_min: int                         # fewest frames any window of any step attends to (own + refs)
    sees_max: int
    step_windows: List[Dict[str, Any]]    # the chosen step: frames, references, sees, role per window
    module: Optional[Dict[str, Any]] = None
    fitted: Dict[str, Tuple[Any, Any]] = field(default_factory=dict)   # option -> (asked, used)
    fitting: str = ""                     # one sentence on how the options meet the positional table
    refused: Optional[str] = None         # the message the generation would stop with
    notes: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        out = dict(self.__dict__)
        out["fitted"] = {k: {"asked": a, "used": u} for k, (a, u) in self.fitted.items()}
        return out


def fit(options: AnimationOptions, module: Optional[ModuleInfo]) -> AnimationOptions:
    """The options as they will run with `module` (unchanged without one); AnimLongError when refused."""
    if module is None:
        return options
    return fit_options(options, module.pe_length).options


def window_role(window: Window) -> str:
    """'output' for a window whose frames are fused into the result, 'reference-only' for one computed only
    so later windows can read it (its fusion weights are the planner's REFERENCE_ONLY marker)."""
    role = getattr(window, "role", None)     # an explicit role, once the planner has one
    if role:
        return str(role)
    return "reference-only" if max(window.weights) <= REFERENCE_ONLY * 10 else "output"


def summarise(options: AnimationOptions, total_steps: int, step: Optional[int] = None,
              module: Optional[ModuleInfo] = None) -> Summary:
    """The summary of `options` for a sampler of `total_steps` steps; `step` (default: the last) is the
    step whose windows are listed. Never raises for a refused choice: `refused` holds the message.

    Cost: one plan per step (pure, O(frames) each); milliseconds for hundreds of frames.
    """
    if total_steps < 1:
        raise AnimLongError(f"'steps' must be at least 1 to plan windows; got {total_steps}.")
    step = total_steps - 1 if step is None else step
    if not 0 <= step < total_steps:
        raise AnimLongError(f"'step' must be between 0 and {total_steps - 1} (steps - 1); got {step}.")
    base = Summary(frames=options.frames, fps=options.fps, duration_s=round(options.frames / options.fps, 3),
                   total_steps=total_steps, step=step, context_length=min(options.context_length, options.frames),
                   windows_per_step=[], calls_per_step=[], sees_min=0, sees_max=0, step_windows=[],
                   module=None if module is None else dict(module.__dict__))
    try:
        used = fit(options, module)
    except AnimLongError as error:
        base.refused = str(error)
        return base
    base.fitted = {name: (value, getattr(used, name)) for name, value in options.to_dict().items()
                   if getattr(used, name) != value}
    base.fitting = _fitting_sentence(options, used, module)
    try:
        plans = [plan(s, total_steps, used.frames, used) for s in range(total_steps)]
    except AnimLongError as error:
        base.refused = str(error)
        return base
    sees = [len(w.frames) + len(w.references) for windows in plans for w in windows]
    base.windows_per_step = [len(windows) for windows in plans]
    base.calls_per_step = [sum(window_role(w) == "output" for w in windows) for windows in plans]
    base.sees_min, base.sees_max = min(sees), max(sees)
    base.step_windows = [dict(frames=list(w.frames), references=list(w.references),
                              sees=len(w.frames) + len(w.references), role=window_role(w)) for w in plans[step]]
    if module is not None and base.sees_max > module.pe_length and used.reference_positions == "unique":
        base.notes.append(f"Some windows attend to {base.sees_max} frames with unique reference positions, "
                          f"more than the module's positional table ({module.pe_length}).")
    return base


def _fitting_sentence(asked: AnimationOptions, used: AnimationOptions, module: Optional[ModuleInfo]) -> str:
    if module is None:
        return "No motion module chosen: the options are shown as given."
    table = module.pe_length
    head = f"{_module_words(module)}positional table {table} frames"
    if used.context_length != asked.context_length:
        return f"{head}: the context length is lowered to {used.context_length} frames to fit the table."
    if used.references != asked.references:
        return (f"{head}: a window of {min(used.context_length, used.frames)} frames leaves no room for "
                f"reference frames, so references are off.")
    if used.reference_budget != asked.reference_budget:
        return (f"{head}: references limited to {used.reference_budget} frames per window so that own and "
                f"reference frames fit the table together.")
    return f"{head}: the options fit as they are."


def _module_words(module: ModuleInfo) -> str:
    known = [word for word in (module.family, module.version) if word and word != "?"]
    return " ".join(known) + ", " if known else ""


def summarise_dict(values: Dict[str, Any], total_steps: int, step: Optional[int] = None,
                   module: Optional[ModuleInfo] = None) -> Dict[str, Any]:
    """`summarise` from user input (API / page): a bad option value comes back as `refused`, not raised."""
    try:
        options = AnimationOptions.from_dict(values)
    except AnimLongError as error:
        return {"refused": str(error)}
    return summarise(options, total_steps, step, module).as_dict()


# ---- the picture of one step's windows

def _runs(frames: Sequence[int]) -> str:
    """'0-15' for a run, '0,4,8' for a few, '0,4,...,60 (16)' for many."""
    frames = sorted(frames)
    if not frames:
        return "-"
    if frames == list(range(frames[0], frames[-1] + 1)):
        return f"{frames[0]}-{frames[-1]}" if len(frames) > 1 else str(frames[0])
    if len(frames) <= 6:
        return ",".join(map(str, frames))
    return f"{frames[0]},{frames[1]},...,{frames[-1]} ({len(frames)})"


def plan_text(summary: Summary, columns: int = TEXT_COLUMNS) -> str:
    """The summary and the chosen step's windows as text: one row per window, '#' own frames, '+' frames
    computed only for references, 'r' references, '.' neither (frames binned to `columns` characters)."""
    lines = [f"{summary.frames} frames at {summary.fps} fps = {summary.duration_s:g} s; "
             f"context length {summary.context_length}; {summary.total_steps} steps"]
    if summary.module:
        lines.append(f"motion module {summary.module['name']}: "
                     f"{_module_words(ModuleInfo(**summary.module))}positional table {summary.module['pe_length']}")
    if summary.refused:
        lines.append(f"REFUSED: {summary.refused}")
        return "\n".join(lines) + "\n"
    if summary.fitting:
        lines.append(summary.fitting)
    lines.append(f"windows per step: {_per_step(summary.windows_per_step)}; each window sees "
                 f"{summary.sees_min}-{summary.sees_max} frames (own + references)")
    lines.extend(summary.notes)
    n = summary.frames
    width = min(columns, n)
    lines.append(f"step {summary.step + 1}/{summary.total_steps}: {len(summary.step_windows)} windows "
                 f"(# own, + reference-only, r read as reference)")
    for i, w in enumerate(summary.step_windows):
        bar = ["."] * width
        for f in w["references"]:
            bar[f * width // n] = "r"
        own = "+" if w["role"] != "output" else "#"
        for f in w["frames"]:
            bar[f * width // n] = own
        lines.append(f"{i + 1:4d} |{''.join(bar)}| frames {_runs(w['frames'])}  refs {_runs(w['references'])}  "
                     f"sees {w['sees']}")
    return "\n".join(lines) + "\n"


def _per_step(counts: List[int]) -> str:
    if not counts:
        return "-"
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}-{high}"


def plan_png(summary: Summary, max_width: int = PLAN_PNG_MAX_WIDTH, max_height: int = PLAN_PNG_MAX_HEIGHT) -> bytes:
    """PNG bytes of the chosen step: x = frame (binned when there are more frames than pixels), y = window
    in compute order; blue own frames, grey frames computed only for references, orange references.

    Raises AnimLongError for a refused summary (there is no plan to draw)."""
    from PIL import Image, ImageDraw
    if summary.refused:
        raise AnimLongError(f"No plan to draw: {summary.refused}")
    n, windows = summary.frames, summary.step_windows
    cell = max(1, min(12, max_width // n))
    width = max(1, min(max_width, n * cell))
    row = max(1, min(14, max_height // max(1, len(windows))))
    height = max(1, len(windows) * row)
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    if row >= 6:
        for i in range(1, len(windows)):
            draw.line([(0, i * row), (width, i * row)], fill=GRID)

    def span(f):
        x0 = f * width // n
        return x0, max(x0, (f + 1) * width // n - (1 if cell > 2 else 0) - 1)

    for i, w in enumerate(windows):
        y0, y1 = i * row + (1 if row >= 6 else 0), (i + 1) * row - (2 if row >= 6 else 1)
        for f in w["references"]:
            x0, x1 = span(f)
            draw.rectangle([x0, y0, x1, max(y0, y1)], fill=REFERENCE)
        colour = OWN if w["role"] == "output" else ANCHOR_ONLY
        for f in w["frames"]:
            x0, x1 = span(f)
            draw.rectangle([x0, y0, x1, max(y0, y1)], fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
