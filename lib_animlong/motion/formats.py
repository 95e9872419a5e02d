"""Recognise a motion-module file from its keys and shapes alone, and check it is whole and consistent.

Topology comes from the keys (levels, modules per level, mid module) and shapes (channels, pe rows);
family from the number of levels (4: SD1.5, 3: SDXL, anything else: a custom UNet such as our small
model); version from the positional table and the mid module (see ../shared/docs/formats.md).
HotShot-XL computes the same temporal layers under its own key names; `normalise` renames them to ours.

People put every kind of model file into a motion-module folder; `classify` names each kind from its keys
(motion module, MotionLoRA, AnimateDiff v3 domain adapter, SparseCtrl encoder, image LoRA, Stable Diffusion
checkpoint, VAE, ControlNet, embedding) with what to do with it, and `recognise` refuses the other kinds
with that sentence.
"""
import re
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..errors import AnimLongError
from .spec import MotionSpec, layout_shapes

_SITE = re.compile(r"^(down_blocks|up_blocks)\.(\d+)\.motion_modules\.(\d+)\.temporal_transformer\.(.+)$")
_MID = re.compile(r"^mid_block\.motion_modules\.0\.temporal_transformer\.(.+)$")
_HOTSHOT = re.compile(r"^(down_blocks|up_blocks)\.(\d+)\.temporal_attentions\.(\d+)\.(.+)$")
_LORA = re.compile(r"\.processor\.to_(q|k|v|out)_lora\.(down|up)\.weight$")
_WEBUI_LORA = re.compile(r"^(lora_unet_|lora_te\d?_|lycoris_|oft_unet_)|\.(lora_down|lora_up|hada_w1_a|lokr_w1|"
                         r"lora_A|lora_B)\.weight$|\.alpha$")
FAMILIES = {4: "SD1.5", 3: "SDXL"}
ANIMATELCM_PE = 64  # AnimateLCM files carry no pe; the peers assume 64 rows


@dataclass(frozen=True)
class Recognised:
    family: str
    version: str
    pe_length: int
    has_mid: bool
    channels: Tuple[int, ...]
    spec: MotionSpec

    def summary(self) -> Dict:
        return {k: v for k, v in asdict(self).items() if k != "spec"}


@dataclass(frozen=True)
class FileKind:
    """What a model file is (`kind`, a short name), said as a noun phrase (`what`) with what to do (`advice`)."""
    kind: str
    what: str
    advice: str

    @property
    def is_motion_module(self) -> bool:
        return self.kind == "motion module"

    def refusal(self) -> str:
        return f"This file is {self.what}, not a motion module. {self.advice}"


MOTION_MODULE = FileKind("motion module", "an AnimateDiff motion module", "Choose it as the motion module.")
KINDS = {
    "MotionLoRA": FileKind(
        "MotionLoRA", "an AnimateDiff MotionLoRA", "MotionLoRAs are LoRAs for the temporal layers of v2 motion "
        "modules (e.g. a camera move); long animation does not apply them: choose a motion module (e.g. "
        "mm_sd_v15_v2) and move this file out of the motion-module folder."),
    "domain adapter": FileKind(
        "domain adapter", "an AnimateDiff v3 domain adapter: a LoRA for the image model's spatial attention "
        "(v3_sd15_adapter), in diffusers' attention-processor format",
        "Use it as an image LoRA: the webui's Lora loader reads the webui/kohya format (lora_unet_... keys), so "
        "put a version converted to that format into the webui's models/Lora folder and add <lora:NAME:1> to the "
        "prompt (it is optional: it adapts the image model to the video data v3_sd15_mm was trained on). Move "
        "this file out of the motion-module folder."),
    "SparseCtrl": FileKind(
        "SparseCtrl", "an AnimateDiff v3 SparseCtrl encoder (a ControlNet for sparse RGB or scribble frames)",
        "Long animation does not use SparseCtrl; move this file out of the motion-module folder and choose a "
        "motion module (e.g. v3_sd15_mm)."),
    "image LoRA": FileKind(
        "image LoRA", "a LoRA (or LyCORIS) for the image model, in the webui's format",
        "Put it into the webui's models/Lora folder and add <lora:NAME:1> to the prompt."),
    "checkpoint": FileKind(
        "checkpoint", "a Stable Diffusion checkpoint (an image model)",
        "Put it into the webui's models/Stable-diffusion folder and choose it as the Stable Diffusion checkpoint."),
    "VAE": FileKind("VAE", "a VAE (the image model's autoencoder)",
                    "Put it into the webui's models/VAE folder and choose it in Settings > VAE."),
    "ControlNet": FileKind("ControlNet", "a ControlNet model",
                           "Put it into the ControlNet extension's models folder (models/ControlNet)."),
    "embedding": FileKind("embedding", "a textual-inversion embedding",
                          "Put it into the webui's embeddings folder and write its name in the prompt."),
    "unknown": FileKind("unknown", "a model file of an unknown kind (it has no `motion_modules` keys)",
                        "Choose an AnimateDiff motion module (e.g. mm_sd_v15_v2.ckpt or v3_sd15_mm.ckpt)."),
}


def classify(state: Mapping) -> FileKind:
    """The kind of model file `state` (a file's unwrapped top-level dictionary) is, from its keys alone."""
    keys = [str(k) for k in state]
    lora = [k for k in keys if _LORA.search(k)]
    if lora:
        return KINDS["MotionLoRA"] if any(".motion_modules." in k for k in lora) else KINDS["domain adapter"]
    if any(k.startswith(("controlnet_cond_embedding.", "controlnet_down_blocks.")) for k in keys):
        return KINDS["SparseCtrl"] if any(".motion_modules." in k for k in keys) else KINDS["ControlNet"]
    if any(".motion_modules." in k or ".temporal_attentions." in k for k in keys):
        return MOTION_MODULE
    if any(_WEBUI_LORA.search(k) for k in keys):
        return KINDS["image LoRA"]
    if any(k.startswith(("control_model.", "input_hint_block.", "zero_convs.")) for k in keys):
        return KINDS["ControlNet"]
    if any(k.startswith(("model.diffusion_model.", "cond_stage_model.", "conditioner.embedders.")) for k in keys):
        return KINDS["checkpoint"]
    if any(k.startswith(("encoder.conv_in.", "decoder.conv_out.", "first_stage_model.")) for k in keys):
        return KINDS["VAE"]
    if any(k in ("string_to_param", "emb_params", "clip_l", "clip_g") for k in keys):
        return KINDS["embedding"]
    return KINDS["unknown"]


def unwrap(state: Mapping) -> Dict[str, Any]:
    """Drop a `state_dict` wrapper and a `module.` prefix, as many downloaded files have."""
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def is_motion_lora(state: Mapping) -> bool:
    return classify(state).kind == "MotionLoRA"


def is_hotshot(state: Mapping) -> bool:
    return any(".temporal_attentions." in k for k in state)


def normalise(state: Mapping[str, Any]) -> Dict[str, Any]:
    """HotShot-XL's names to the original AnimateDiff layout; other layouts are returned as they are."""
    if not is_hotshot(state):
        return dict(state)
    return {_from_hotshot(key): tensor for key, tensor in state.items()}


def _from_hotshot(key: str) -> str:
    match = _HOTSHOT.match(key)
    if not match:
        return key
    blocks, level, index, suffix = match.groups()
    suffix = re.sub(r"pos_encoder\.positional_encoding$", "pos_encoder.pe", suffix)
    return f"{blocks}.{level}.motion_modules.{index}.temporal_transformer.{suffix}"


def recognise(state: Mapping[str, Any]) -> Recognised:
    """What the file is; refuses anything that is not a complete, consistent motion module."""
    if not state:
        raise AnimLongError("The file holds no tensors: it is not a motion module. Download it again.")
    kind = classify(state)
    if not kind.is_motion_module:
        raise AnimLongError(kind.refusal())
    hotshot = is_hotshot(state)
    file_names = {_from_hotshot(key): key for key in state} if hotshot else {}
    state = normalise(state)
    levels: Dict[str, Dict[int, Dict[int, int]]] = {"down_blocks": {}, "up_blocks": {}}
    mid_channels = None
    pe_length = None
    for key, tensor in state.items():
        site, mid = _SITE.match(key), _MID.match(key)
        if not (site or mid):
            raise AnimLongError(f"Unknown motion-module layout: unexpected key {file_names.get(key, key)!r}. "
                                "This file is not an AnimateDiff motion module this extension can read.")
        suffix = site.group(4) if site else mid.group(1)
        if suffix.endswith("pos_encoder.pe") and pe_length is None:
            pe_length = tensor.shape[1] if tensor.ndim == 3 else None
        if suffix == "norm.weight":
            if site:
                levels[site.group(1)].setdefault(int(site.group(2)), {})[int(site.group(3))] = tensor.shape[0]
            else:
                mid_channels = tensor.shape[0]
    down, up = _level_channels(levels["down_blocks"], "down_blocks"), _level_channels(levels["up_blocks"], "up_blocks")
    family = FAMILIES.get(len(down[0]), "custom")
    has_pe_keys = pe_length is not None
    version = "HotShot-XL" if hotshot else _version(family, pe_length, mid_channels is not None)
    # the SDXL beta normalises across frames; HotShot-XL per frame, and it pools the UNet's GroupNorms like v1
    spec = MotionSpec(
        family=family, version=version, down_channels=down[0], down_per_level=down[1], up_channels=up[0],
        up_per_level=up[1], mid_channels=mid_channels, pe_length=pe_length or ANIMATELCM_PE,
        norm_across_frames=version == "SDXL-beta", pooled_unet_groupnorm=version in ("v1", "HotShot-XL"),
        has_pe_keys=has_pe_keys)
    check_shapes(state, spec, lambda key: file_names.get(key, key))
    return Recognised(family, version, spec.pe_length, mid_channels is not None, down[0], spec)


def _level_channels(levels: Dict[int, Dict[int, int]], name: str) -> Tuple[Tuple[int, ...], int]:
    if not levels:
        raise AnimLongError(f"Unknown motion-module layout: no `{name}` modules with a norm.weight.")
    if sorted(levels) != list(range(len(levels))):
        raise AnimLongError(f"Unknown motion-module layout: `{name}` levels {sorted(levels)} are not 0..n-1.")
    for level, modules in sorted(levels.items()):
        if sorted(modules) != list(range(len(modules))):
            raise AnimLongError(f"Unknown motion-module layout: `{name}.{level}` holds modules {sorted(modules)}, "
                                "not 0..n-1.")
    counts = {len(modules) for modules in levels.values()}
    if len(counts) != 1:
        raise AnimLongError(f"Unknown motion-module layout: `{name}` levels hold different module counts.")
    return tuple(levels[i][0] for i in range(len(levels))), counts.pop()


def _version(family: str, pe_length: Optional[int], has_mid: bool) -> str:
    if family == "SDXL":
        return "SDXL-beta"
    if family == "custom":
        return "custom"
    if pe_length is None:
        return "AnimateLCM"
    if pe_length == 24:
        return "v1"
    if pe_length in (64, 128):
        return "LongAnimateDiff"
    return "v2" if has_mid else "v3"


def expected_shapes(spec: MotionSpec) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of a module set built from spec, in its state dict's order (spec.layout_shapes: no torch)."""
    return layout_shapes(spec)


def check_shapes(state: Mapping[str, Any], spec: MotionSpec,
                 file_name: Callable[[str], str] = lambda key: key) -> None:
    """Every key of the layout present with its shape; names the first key that is not, as the file names it."""
    expected = expected_shapes(spec)
    for key, shape in expected.items():
        if key not in state:
            raise AnimLongError(f"The motion module is incomplete: key {file_name(key)!r} is missing. The file may be "
                                "truncated or from another tool; download it again.")
        if tuple(state[key].shape) != shape:
            raise AnimLongError(
                f"The motion module's shapes are inconsistent with {spec.family} {spec.version}: key "
                f"{file_name(key)!r} has shape {tuple(state[key].shape)}, expected {shape}. The file is damaged or not an AnimateDiff "
                "motion module.")
    extra = [k for k in state if k not in expected]
    if extra:
        raise AnimLongError(f"Unknown motion-module layout: unexpected key {file_name(extra[0])!r} for {spec.family} "
                            f"{spec.version}.")

