"""MotionLoRAs in the webui: the folders searched, the user's choice (names with strengths), and a copy
of the motion module with the LoRAs added (the engine's `motion.lora.lora_deltas`).

A choice is written `name:strength` entries separated by commas in the UI (`v2_lora_ZoomIn.ckpt:0.8,
v2_lora_PanLeft.ckpt`; strength 1 when left out), as a list in the API (strings, `[name, strength]` pairs
or `{"name": ..., "strength": ...}` objects) and as `name:strength+name:strength` in the infotext.
Nothing here imports the webui.
"""
import copy
import math
import os
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch

from ..errors import AnimLongError
from .motion_files import MOTION_EXTENSIONS

MotionLoras = Tuple[Tuple[str, float], ...]
STRENGTH_LIMIT = 4.0      # |strength| above this is almost certainly a typo (the peers offer 0..1)


def lora_folders(extension_root: str, webui_lora_dir: str = "") -> List[str]:
    """The extension's motion_loras/ folder, then the webui's Lora folder (if known)."""
    folders = [os.path.join(extension_root, "motion_loras")]
    if webui_lora_dir:
        folders.append(os.path.abspath(webui_lora_dir))
    return folders


def _looks_like_motion_lora(path: str) -> bool:
    """In a shared Lora folder only files whose keys name motion-module LoRA weights are offered
    (read from the .safetensors header; other containers would need unpickling and are skipped there)."""
    if not path.lower().endswith(".safetensors"):
        return False
    try:
        from safetensors import safe_open
        with safe_open(path, framework="pt") as handle:
            return any("motion_modules" in key and ".processor.to_" in key for key in handle.keys())
    except Exception:   # unreadable or not safetensors: not offered
        return False


def list_motion_loras(folders: Sequence[str]) -> List[str]:
    """File names, sorted: every motion-file in the first folder, recognised MotionLoRAs in the others."""
    names: Dict[str, str] = {}
    for index, folder in enumerate(folders):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not (name.lower().endswith(MOTION_EXTENSIONS) and os.path.isfile(path)):
                continue
            if index == 0 or _looks_like_motion_lora(path):
                names.setdefault(name, path)
    return sorted(names)


def resolve_lora(name: str, folders: Sequence[str]) -> str:
    for folder in folders:
        path = os.path.join(folder, os.path.basename(name))
        if os.path.isfile(path):
            return path
    available = list_motion_loras(folders)
    where = " or ".join(folders)
    raise AnimLongError(f"AnimLong: 'motion_loras' names {name!r}, which is not in {where}. "
                        + (f"Choose one of {', '.join(available)}." if available
                           else "Put MotionLoRA files (e.g. v2_lora_ZoomIn.ckpt) into the first folder."))


def parse_motion_loras(value: Any) -> MotionLoras:
    """The user's choice as ((name, strength), ...); refuses a bad entry naming 'motion_loras'."""
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, str):
        value = [part for part in value.replace("+", ",").replace("\n", ",").split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise AnimLongError(f"AnimLong: 'motion_loras' must be a list such as [\"v2_lora_ZoomIn.ckpt:0.8\"], "
                            f"got {value!r}.")
    entries = []
    for item in value:
        if isinstance(item, dict):
            name, strength = item.get("name"), item.get("strength", 1.0)
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            name, strength = item
        elif isinstance(item, str):
            name, _, raw = item.strip().rpartition(":") if _has_strength(item) else (item.strip(), "", "1")
            strength = raw
        else:
            raise AnimLongError(f"AnimLong: 'motion_loras' entry {item!r} is not 'name:strength'.")
        name = str(name or "").strip()
        if not name:
            raise AnimLongError(f"AnimLong: 'motion_loras' entry {item!r} has no file name.")
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            raise AnimLongError(f"AnimLong: 'motion_loras' entry {item!r}: the strength must be a number.") from None
        if not math.isfinite(strength) or abs(strength) > STRENGTH_LIMIT:
            raise AnimLongError(f"AnimLong: 'motion_loras' entry {item!r}: the strength must be between "
                                f"-{STRENGTH_LIMIT:g} and {STRENGTH_LIMIT:g}.")
        entries.append((os.path.basename(name), strength))
    return tuple(entries)


def _has_strength(item: str) -> bool:
    head, sep, tail = item.strip().rpartition(":")
    if not sep:
        return False
    try:
        float(tail)
        return True
    except ValueError:
        return False


def format_motion_loras(loras: MotionLoras, separator: str = "+") -> str:
    """The inverse of parse_motion_loras for the infotext (`+`) and the UI text box (`, `)."""
    return separator.join(f"{name}:{strength:g}" for name, strength in loras)


def with_motion_loras(motion, loras: MotionLoras, resolve: Callable[[str], str]):
    """A copy of `motion` (a MotionModuleSet) with each LoRA's up @ down x strength added; `motion` itself
    (the cached module) is never changed. Raises AnimLongError for a file that is no MotionLoRA or does not
    fit the module (the engine's messages)."""
    from ..motion.lora import lora_deltas, read_motion_lora
    if not loras:
        return motion
    merged = copy.deepcopy(motion)
    parameters = dict(merged.named_parameters())
    with torch.no_grad():
        for name, strength in loras:
            path = resolve(name)
            try:
                deltas = lora_deltas(merged, read_motion_lora(path))
            except AnimLongError as error:
                raise AnimLongError(f"AnimLong: MotionLoRA {name}: {error}") from None
            for target, delta in deltas.items():
                parameters[target].add_(delta.to(parameters[target]) * strength)
    return merged
