"""Every user-facing knob of a long animation, declared once.

The webui controls, the API dict, the CLI flags, validation messages and the infotext round trip are all
derived from the field metadata here; nothing else re-declares a default, a range or a help text.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import AnimLongError


def knob(default, label: str, help: str, *, minimum=None, maximum=None, step=None,
         choices: Optional[Tuple[str, ...]] = None, infotext: Optional[str] = None, advanced: bool = False):
    """A dataclass field with the metadata the UI, API and validation read."""
    return field(default=default, metadata=dict(
        label=label, help=help, minimum=minimum, maximum=maximum, step=step, choices=choices,
        infotext=infotext or label, advanced=advanced))


SCHEDULES = ("anchored-shift", "overlap", "uniform", "shifted", "dilated", "freenoise")
FREEINIT_FILTERS = ("butterworth", "gaussian", "ideal", "box")
FREEINIT_RENOISE = ("initial", "fresh")   # freeinit.py: the Wu et al. 2023 filters
FUSE_WEIGHTS = ("pyramid", "flat", "gaussian", "last")
PHASE_LAWS = ("golden", "van-der-corput", "random")
REFERENCE_MODES = ("none", "previous", "anchors", "previous+anchors")
REFERENCE_POSITIONS = ("unique", "window", "none")
NOISE_MODES = ("per-frame", "freenoise")
PIN_MODES = ("noised", "clean")
OUTPUT_FORMATS = ("GIF", "MP4", "WEBP", "PNG")


@dataclass(frozen=True)
class AnimationOptions:
    frames: int = knob(64, "Frames", "Number of frames in the animation (the batch size).",
                       minimum=1, maximum=4096, step=1)
    fps: int = knob(8, "FPS", "Frames per second of the saved video.", minimum=1, maximum=60, step=1)
    context_length: int = knob(16, "Context length",
                               "Frames the motion module sees at once (at most its positional table: "
                               "24 for v1, 32 for v2/v3).", minimum=2, maximum=128, step=1)
    schedule: str = knob("uniform", "Schedule",
                         "How frame windows are laid out at each step. uniform (default): overlapping windows "
                         "whose grid moves every step, fused with the fusion weights; on a trained model its "
                         "motion is the closest to one window over all frames (benchmarks/RESULTS.md). "
                         "anchored-shift: windows spanning the whole video while the noise is high, then "
                         "shifted windows that see their neighbours and anchor frames (the lowest seams in the "
                         "oracle, but it strobes on learned motion); overlap: static overlapping windows; "
                         "shifted: non-overlapping windows moved every step; dilated: every 1st/2nd/4th frame; "
                         "freenoise: windows every 4 frames.", choices=SCHEDULES)
    closed_loop: bool = knob(False, "Closed loop", "Make the last frame flow back into the first.")
    overlap: int = knob(4, "Overlap", "Frames shared by neighbouring windows (overlap schedules).",
                        minimum=0, maximum=64, step=1, advanced=True)
    fuse_weights: str = knob("pyramid", "Fusion weights", "How overlapping window outputs are averaged "
                             "(last: the last window wins, like the A1111 peer).",
                             choices=FUSE_WEIGHTS, advanced=True)
    phase_law: str = knob("van-der-corput", "Phase law", "How window boundaries move between steps "
                          "(van-der-corput is best for anchored-shift, golden for plain shifted windows).",
                          choices=PHASE_LAWS, advanced=True)
    references: str = knob("none", "References",
                           "Frames a window may attend to besides its own (temporal reference buffers). "
                           "previous+anchors is what anchored-shift was designed with.",
                           choices=REFERENCE_MODES)
    reference_positions: str = knob("unique", "Reference positions",
                                    "Positional encoding of reference frames.", choices=REFERENCE_POSITIONS,
                                    advanced=True)
    reference_budget: int = knob(0, "Reference frames per window",
                                 "How many reference frames a window may attend to besides its own (0: as many "
                                 "as the context length, fewer when the motion module's positional table is "
                                 "shorter, e.g. v1).", minimum=0, maximum=128, step=1, advanced=True)
    anchor_stride: int = knob(0, "Anchor stride", "Anchor frames every this-many frames, computed first at each "
                              "step for the other windows to look at (0: the context length).",
                              minimum=0, maximum=1024, step=1, advanced=True)
    global_steps: float = knob(0.53, "Global steps", "anchored-shift: fraction of the steps (the noisiest) "
                               "whose windows span the whole video: combs of every d-th frame that all look at "
                               "one hub comb, narrowing to every 2nd frame.", minimum=0.0, maximum=1.0, step=0.01,
                               advanced=True)
    frames_per_call: int = knob(0, "Frames per UNet call",
                                "Batch independent windows into one UNet call up to this many frames "
                                "(0: one window per call).", minimum=0, maximum=1024, step=1, advanced=True)
    motion_scale: float = knob(1.0, "Motion scale", "Strength of motion (scales temporal attention).",
                               minimum=0.5, maximum=1.5, step=0.01)
    noise: str = knob("per-frame", "Noise", "Initial noise: one seed per frame (seed + i), or FreeNoise "
                      "rescheduling.", choices=NOISE_MODES, advanced=True)
    keyframes_first: bool = knob(False, "Keyframes first", "Sample sparse keyframes jointly first, then all "
                                 "frames with the keyframes pinned.", advanced=True)
    first_frame_strength: float = knob(1.0, "First frame strength",
                                       "img2img: how strongly the init image is pinned as frame 0.",
                                       minimum=0.0, maximum=1.0, step=0.05)
    last_frame_strength: float = knob(1.0, "Last frame strength",
                                      "img2img: how strongly the optional last image is pinned.",
                                      minimum=0.0, maximum=1.0, step=0.05)
    keyframe_stride: int = knob(0, "Keyframe stride", "Keyframes first: every this-many-th frame is a keyframe "
                                "(0: as few as fit one window).", minimum=0, maximum=256, step=1, advanced=True)
    pin_mode: str = knob("noised", "Pinned frames", "How known frames (init image, keyframes) are shown to the "
                         "model: re-noised to the current level each step, or clean.", choices=PIN_MODES,
                         advanced=True)
    pin_fade: float = knob(0.0, "Pin fade", "How far the pinning strength falls over the steps (0: constant, "
                           "1: down to nothing at the last step).", minimum=0.0, maximum=1.0, step=0.05,
                           advanced=True)
    spectral_steps: float = knob(0.0, "Spectral hub steps",
                                 "Fraction of the steps (the noisiest first) that also compute one hub window of "
                                 "context-length frames spread over the whole video; the fused result's slow "
                                 "changes (slower than the hub's frame spacing) become the hub's, the faster ones "
                                 "stay the windows' (FreeLong-style spectral blending). 0: off; 1: every step.",
                                 minimum=0.0, maximum=1.0, step=0.01, advanced=True)
    freeinit_iterations: int = knob(0, "FreeInit iterations",
                                    "FreeInit (Wu et al. 2023): sample this many extra times, each starting from the "
                                    "low frequencies of the previous result re-noised, with fresh noise for the high "
                                    "frequencies (0: off). Each iteration costs one more whole sampling run. "
                                    "txt2img only (first pass; not the hires pass).",
                                    minimum=0, maximum=5, step=1, advanced=True)
    freeinit_filter: str = knob("butterworth", "FreeInit filter",
                                "The 3-D (frames x height x width) low-pass filter FreeInit keeps the previous "
                                "result's low frequencies with (butterworth: order 4).",
                                choices=FREEINIT_FILTERS, advanced=True)
    freeinit_d_s: float = knob(0.25, "FreeInit spatial stop frequency",
                               "Normalised spatial stop frequency of the FreeInit filter (1: the Nyquist frequency; "
                               "the paper's default 0.25).", minimum=0.01, maximum=1.0, step=0.01, advanced=True)
    freeinit_d_t: float = knob(0.25, "FreeInit temporal stop frequency",
                               "Normalised temporal stop frequency of the FreeInit filter (1: the Nyquist frequency; "
                               "0.25 keeps what changes more slowly than every 8 frames; the paper's default).",
                               minimum=0.01, maximum=1.0, step=0.01, advanced=True)
    freeinit_renoise: str = knob("initial", "FreeInit re-noise",
                                 "The noise FreeInit re-noises the previous result with: initial (the first run's "
                                 "noise, as the paper's code does) or fresh (a new draw per run). In the oracle "
                                 "world initial over-strengthens the low frequencies (less motion) and fresh brings "
                                 "the result closer to the true video statistics (benchmarks/oracle_freeinit.py).",
                                 choices=FREEINIT_RENOISE, advanced=True)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "AnimationOptions":
        """Build from user input (API dict, CLI); unknown keys and bad values are refused by name."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise AnimLongError(f"Unknown option {unknown[0]!r}. Known options: {', '.join(known)}.")
        return cls(**{name: _coerce(known[name], value) for name, value in values.items()})

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "AnimationOptions":
        return dataclasses.replace(self, **changes)


def option_fields():
    return dataclasses.fields(AnimationOptions)


def _coerce(f: dataclasses.Field, value):
    kind = f.type
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str and isinstance(value, str):
        return value
    raise AnimLongError(f"Option {f.name!r} must be {kind.__name__}, got {value!r}.")


def _check(f: dataclasses.Field, value) -> None:
    meta = f.metadata
    if meta["choices"] is not None and value not in meta["choices"]:
        raise AnimLongError(f"Option {f.name!r} must be one of {', '.join(meta['choices'])}; got {value!r}.")
    if meta["minimum"] is not None and value < meta["minimum"]:
        raise AnimLongError(f"Option {f.name!r} must be at least {meta['minimum']}; got {value!r}.")
    if meta["maximum"] is not None and value > meta["maximum"]:
        raise AnimLongError(f"Option {f.name!r} must be at most {meta['maximum']}; got {value!r}.")
