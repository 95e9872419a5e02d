"""A motion module on the device and dtype of one sampling pass, released when the pass ends.

The cached module (loader.MotionCache) stays on the CPU in the file's dtype for its whole life: moving it
to the GPU in place would keep a copy there after the generation (one per cached module), and casting an
fp32 file to an fp16 UNet's dtype in place would leave it rounded for every later generation. `placed`
yields a copy on the pass's device and dtype instead and empties that copy at exit (any exit: success,
error, interrupt), so the device memory is free again even if a reference to the copy survives.
"""
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import nn

from .module import MotionModuleSet


def placed_on(motion: MotionModuleSet, device, dtype: Optional[torch.dtype]) -> bool:
    """Whether every floating tensor of `motion` already is on `device` in `dtype` (None: any dtype)."""
    device = torch.device(device)
    for tensor in _tensors(motion):
        if tensor.device.type != device.type or (device.index is not None and tensor.device.index != device.index):
            return False
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            return False
    return True


@contextmanager
def placed(motion: MotionModuleSet, device, dtype: Optional[torch.dtype] = None) -> Iterator[MotionModuleSet]:
    """`motion` on `device` in `dtype` (None: its own dtype) for the `with` block; `motion` is never changed.

    Yields `motion` itself when it is already there (then in-place changes, e.g. a MotionLoRA, must be
    undone by whoever makes them, as motion.lora does); otherwise a copy built tensor by tensor (no
    second CPU copy), whose tensors are replaced by empty `meta` tensors at exit."""
    if placed_on(motion, device, dtype):
        yield motion
        return
    with torch.device("meta"):
        copy = MotionModuleSet(motion.spec)
    try:
        for name, tensor, is_parameter in _named_tensors(motion):
            value = tensor.detach().to(device=device, dtype=dtype if tensor.is_floating_point() else None)
            _assign(copy, name, value, is_parameter)
        copy.eval().requires_grad_(False)
        yield copy
    finally:
        for name, tensor, is_parameter in _named_tensors(copy):
            _assign(copy, name, torch.empty(tensor.shape, dtype=tensor.dtype, device="meta"), is_parameter)


def _named_tensors(module: nn.Module):
    """(name, tensor, is_parameter) for every parameter and buffer, persistent or not."""
    for name, parameter in module.named_parameters():
        yield name, parameter, True
    for name, buffer in module.named_buffers():
        yield name, buffer, False


def _tensors(module: nn.Module):
    return [tensor for _, tensor, _ in _named_tensors(module)]


def _assign(root: nn.Module, name: str, value: torch.Tensor, is_parameter: bool) -> None:
    owner, _, leaf = name.rpartition(".")
    module = root.get_submodule(owner) if owner else root
    if is_parameter:
        module._parameters[leaf] = nn.Parameter(value, requires_grad=False)
    else:
        module._buffers[leaf] = value
