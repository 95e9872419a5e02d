"""MotionLoRA in its original format: per attention projection, delta W = up @ down, times a strength."""
import re
from contextlib import contextmanager
from typing import Dict, Mapping

import torch

from ..errors import AnimLongError
from .formats import is_motion_lora
from .loader import read_state_dict
from .module import MotionModuleSet

_KEY = re.compile(r"^(.*)\.processor\.to_(q|k|v|out)_lora\.(down|up)\.weight$")
_TARGET = {"q": "to_q.weight", "k": "to_k.weight", "v": "to_v.weight", "out": "to_out.0.weight"}


def read_motion_lora(path: str) -> Dict[str, torch.Tensor]:
    """A MotionLoRA file's tensors (same safe readers as motion modules); refuses anything else."""
    state = read_state_dict(path)
    if not is_motion_lora(state):
        raise AnimLongError(f"{path} is not a MotionLoRA: it has no `processor.to_*_lora` keys. Choose a "
                            "MotionLoRA file (e.g. v2_lora_ZoomIn) or load it as a motion module instead.")
    return state


def lora_deltas(motion: MotionModuleSet, lora: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Parameter name -> up @ down, checked against the module's keys and shapes."""
    pairs: Dict[str, Dict[str, torch.Tensor]] = {}
    for key, tensor in lora.items():
        match = _KEY.match(key)
        if not match:
            raise AnimLongError(f"Not a MotionLoRA: unexpected key {key!r}.")
        pairs.setdefault(f"{match.group(1)}.{_TARGET[match.group(2)]}", {})[match.group(3)] = tensor
    if not pairs:
        raise AnimLongError("The MotionLoRA file holds no LoRA weights.")
    parameters = dict(motion.named_parameters())
    deltas = {}
    for target, pair in pairs.items():
        if target not in parameters:
            raise AnimLongError(f"This MotionLoRA does not fit the motion module: {target!r} does not exist in "
                                f"{motion.spec.family} {motion.spec.version}. MotionLoRAs are made for v2 modules.")
        if set(pair) != {"down", "up"}:
            raise AnimLongError(f"The MotionLoRA is incomplete: {target!r} lacks its "
                                f"{'up' if 'down' in pair else 'down'} weight.")
        delta = pair["up"].float() @ pair["down"].float()
        if delta.shape != parameters[target].shape:
            raise AnimLongError(f"This MotionLoRA does not fit the motion module: {target!r} would change by "
                                f"{tuple(delta.shape)} but is {tuple(parameters[target].shape)}.")
        deltas[target] = delta
    return deltas


@contextmanager
def motion_lora(motion: MotionModuleSet, lora: Mapping[str, torch.Tensor], strength: float = 1.0):
    """Apply the LoRA while the block runs; the original weights come back on any exit."""
    deltas = lora_deltas(motion, lora)
    parameters = dict(motion.named_parameters())
    saved = {name: parameters[name].detach().clone() for name in deltas}
    try:
        with torch.no_grad():
            for name, delta in deltas.items():
                parameters[name].add_(delta.to(parameters[name]) * strength)
        yield motion
    finally:
        with torch.no_grad():
            for name, original in saved.items():
                parameters[name].copy_(original)
