"""A .safetensors file's tensor names, shapes and dtypes from its header alone, without torch.

A .safetensors file starts with an 8-byte little-endian length and a JSON header naming each tensor's
dtype, shape and byte range. The header is read and validated by the `safetensors` package itself
(`safe_open(framework="numpy")`, which imports numpy but never torch, and reads no weights): its checks and
error texts are the ones `safetensors.torch.load_file` raises for the same file, so a refusal reads the same
whichever path read the file. `python -m lib_animlong inspect` and `plan --motion-module` recognise a file
from these stand-ins in milliseconds (`motion.formats.recognise` needs only names and shapes).

The existence check and the error wording are shared with `motion.loader` (the torch path).
"""
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ..errors import AnimLongError

SAFETENSORS = (".safetensors",)
# safetensors dtype -> torch's name for it (str(torch.dtype) without "torch."), as safetensors.torch maps them
DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
          "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "F8_E4M3": "float8_e4m3fn",
          "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2": "float8_e5m2", "F8_E5M2FNUZ": "float8_e5m2fnuz",
          "C64": "complex64", "U64": "uint64", "U32": "uint32", "U16": "uint16"}


@dataclass(frozen=True)
class TensorShape:
    """A tensor as its file's header describes it: what recognition and `inspect` read from a tensor."""
    shape: Tuple[int, ...]
    dtype: str  # torch's name, e.g. "float16"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


def check_exists(path: str) -> os.stat_result:
    """os.stat(path), or the message a missing motion-module file gets."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise AnimLongError(f"Motion module file not found: {path}. Put it in the motion_modules folder or "
                            "check the path.") from None


def first_line(error: Exception) -> str:
    """The first line of an error's text (at most 160 characters), or its type's name."""
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__


def corrupt(name: str, error: Exception) -> AnimLongError:
    return AnimLongError(f"{name} is truncated or corrupt ({first_line(error)}); download it again.")


def is_safetensors(path: str) -> bool:
    return os.path.splitext(os.path.basename(path))[1].lower() in SAFETENSORS


def read_header(path: str) -> Optional[Dict[str, TensorShape]]:
    """Name -> TensorShape of every tensor of a .safetensors file, in the file's order, nothing unwrapped.

    Raises AnimLongError when the file is missing or its header is truncated or corrupt (the same message
    motion.loader.read_state_dict gives). Returns None when a dtype has no torch name here (then read the
    file with torch, which decides)."""
    from safetensors import safe_open
    check_exists(path)
    try:
        with safe_open(path, framework="numpy") as handle:
            header = {}
            for key in handle.keys():
                entry = handle.get_slice(key)
                header[key] = (tuple(int(size) for size in entry.get_shape()), entry.get_dtype())
    except Exception as error:
        raise corrupt(os.path.basename(path), error) from None
    if any(dtype not in DTYPES for _, dtype in header.values()):
        return None
    return {key: TensorShape(shape, DTYPES[dtype]) for key, (shape, dtype) in header.items()}
