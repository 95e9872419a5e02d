"""Load the motion-module files people download, unconverted, without ever running pickle code.

`.safetensors` is memory-mapped; `.ckpt` / `.pth` / `.pt` go through torch's own loader with
`weights_only=True` (memory-mapped too when the checkpoint is a zip archive, as torch.save has written them
since 1.6). The module set is built on the `meta` device and the file's tensors are assigned into it, so a
1.8 GB file costs its own size once, not twice. A `MotionCache` (owned by the caller, e.g. the webui
adapter) keeps the last loaded module keyed by path, modification time and size, on the CPU in the file's
dtype; a sampling pass runs a copy on its own device and dtype (`motion.placement.placed`).

Inside the AUTOMATIC1111 webui `torch.load` is the webui's pickle checker (modules/safe.py): it refuses
files a current torch writes (their zip archives hold entries it does not know, such as
`.format_version`), prints a report and returns None. `torch.serialization.load` stays torch's own
function, and `weights_only=True` is the same safety (torch's restricted unpickler: tensors, containers
and plain values only), so the files are read with it wherever the code runs.
"""
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch

from ..errors import AnimLongError
from .formats import Recognised, classify, normalise, recognise, unwrap
from .header import SAFETENSORS, check_exists as _stat, corrupt, first_line as _first_line
from .module import MotionModuleSet, PositionalEncoding, sinusoid_table

PICKLES = (".ckpt", ".pth", ".pt")


@dataclass
class LoadedMotion:
    path: str
    recognised: Recognised
    motion: MotionModuleSet
    file_dtype: torch.dtype
    parameters: int
    file_size: int

    def info(self) -> Dict:
        return dict(self.recognised.summary(), path=self.path, dtype=str(self.file_dtype).replace("torch.", ""),
                    parameters=self.parameters, file_size=self.file_size)


@dataclass
class MotionCache:
    """The most recently loaded modules (a few GB each at full size: keep `capacity` small)."""
    capacity: int = 1
    entries: Dict[Tuple, LoadedMotion] = field(default_factory=dict)

    def get(self, path: str) -> LoadedMotion:
        """The module of `path` on the CPU in the file's dtype; read again when the file changed.

        Never move or cast the returned module: run a copy (`motion.placement.placed`)."""
        stat = _stat(path)
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
        if key not in self.entries:
            loaded = load_motion_module(path)
            while len(self.entries) >= self.capacity:
                self.entries.pop(next(iter(self.entries)))
            self.entries[key] = loaded
        return self.entries[key]


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The file's tensors, with a `state_dict` wrapper or `module.` prefix removed."""
    _stat(path)
    name = os.path.basename(path)
    extension = os.path.splitext(name)[1].lower()
    if extension in SAFETENSORS:
        from safetensors.torch import load_file
        try:
            state = load_file(path)
        except Exception as error:
            raise corrupt(name, error) from None
    elif extension in PICKLES:
        state = _read_pickle(path, name)
    else:
        raise AnimLongError(f"{name}: unsupported file type {extension or '(none)'!r}; motion modules are "
                            ".safetensors, .ckpt, .pth or .pt files.")
    state = unwrap(state)
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        kind = classify(state)
        if kind.kind != "unknown" and not kind.is_motion_module:
            raise AnimLongError(f"{name}: {kind.refusal()}")
        raise AnimLongError(f"{name}: entry {bad[0]!r} is not a tensor; this is not a motion module.")
    return state


def _read_pickle(path: str, name: str) -> Dict:
    """A .ckpt / .pth / .pt file's top-level dictionary, through torch's own loader (never `torch.load`,
    which the webui replaces with a checker that returns None for files a current torch writes)."""
    try:
        # zip checkpoints (torch >= 1.6) are memory-mapped like safetensors; legacy pickles are read whole
        state = torch.serialization.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        raise AnimLongError(f"{name} contains Python objects other than tensors and was not loaded, because "
                            f"running them could execute code ({_unpickler_reason(error)}). Use a .safetensors "
                            "version of the file.") from None
    except Exception as error:
        raise corrupt(name, error) from None
    if not isinstance(state, dict):
        raise AnimLongError(f"{name} holds a {type(state).__name__}, not a dictionary of tensors: it is not a "
                            "motion module (nor any other model file this extension knows).")
    return state


def load_motion_module(path: str, device="cpu", dtype: Optional[torch.dtype] = None,
                       cache: Optional[MotionCache] = None) -> LoadedMotion:
    """Recognise, validate and load a motion module; dtype None keeps the file's dtype.

    With a cache, an unchanged file (same path, mtime, size) already loaded is reused; the cache holds
    modules on the CPU in the file's dtype only, so device and dtype must then be left at their defaults."""
    if cache is not None:
        if str(device) != "cpu" or dtype is not None:
            raise AnimLongError("A MotionCache keeps modules on the CPU in the file's dtype; run a copy on "
                                "another device or dtype with motion.placement.placed().")
        return cache.get(path)
    state = read_state_dict(path)
    recognised = recognise(state)
    state = normalise(state)
    file_dtype = next(iter(state.values())).dtype
    with torch.device("meta"):
        motion = MotionModuleSet(recognised.spec)
    motion.load_state_dict(state, strict=True, assign=True)
    for module in motion.modules():  # files without pe rows (AnimateLCM): build the sinusoid
        if isinstance(module, PositionalEncoding) and module.pe.is_meta:
            module.pe = sinusoid_table(module.pe.shape[1], module.pe.shape[2])
    motion.to(device=device, dtype=dtype or file_dtype).eval().requires_grad_(False)
    return LoadedMotion(path=os.path.abspath(path), recognised=recognised, motion=motion, file_dtype=file_dtype,
                        parameters=sum(p.numel() for p in motion.parameters()), file_size=os.path.getsize(path))


def _unpickler_reason(error: Exception) -> str:
    """What torch's restricted unpickler refused (e.g. "Unsupported global: GLOBAL argparse.Namespace"),
    not the generic first line of its message."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = text.split(marker, 1)[1].strip().splitlines()[0]
        return reason.split(" was not an allowed global")[0].split(". Please")[0][:160]
    return _first_line(error)
