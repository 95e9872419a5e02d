"""The shipped weights of the small sprite model (models/), as two .safetensors files:
    sprites-unet.safetensors    `unet.*` (ldm UNetModel) and `text.*` (TextEmbedding), fp16
    sprites-motion.safetensors  the motion modules with AnimateDiff's original key names, fp16
"""
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from safetensors.torch import load_file, save_file

from ..errors import AnimLongError
from .config import build_unet, motion_spec
from .text import TextEmbedding

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
UNET_FILE = MODELS_DIR / "sprites-unet.safetensors"
MOTION_FILE = MODELS_DIR / "sprites-motion.safetensors"


def save_image_model(path: Path, unet_state: Dict[str, torch.Tensor], text_state: Dict[str, torch.Tensor],
                     dtype=torch.float16) -> None:
    tensors = {f"unet.{k}": v for k, v in unet_state.items()}
    tensors.update({f"text.{k}": v for k, v in text_state.items()})
    save_file({k: v.detach().to(dtype).contiguous() for k, v in tensors.items()}, str(path),
              metadata={"format": "animlong-sprites", "dtype": str(dtype)})


def save_motion(path: Path, state: Dict[str, torch.Tensor], dtype=torch.float16) -> None:
    save_file({k: v.detach().to(dtype).contiguous() for k, v in state.items()}, str(path))


def load_image_model(path: Path = UNET_FILE) -> Tuple[torch.nn.Module, TextEmbedding]:
    """The image UNet and text embedding, fp32, eval mode."""
    if not Path(path).is_file():
        raise AnimLongError(f"The small model's weights are missing: {path}. They ship with the repository "
                            "(models/); restore them with `git checkout -- models/`.")
    tensors = load_file(str(path))
    unet, text = build_unet(), TextEmbedding()
    unet.load_state_dict({k[5:]: v.float() for k, v in tensors.items() if k.startswith("unet.")}, strict=True)
    text.load_state_dict({k[5:]: v.float() for k, v in tensors.items() if k.startswith("text.")}, strict=True)
    return unet.eval().requires_grad_(False), text.eval().requires_grad_(False)


def load_motion_model(path: Optional[Path] = None):
    """The motion modules (a MotionModuleSet, fp32, eval) from the shipped file or another file trained for
    this image model, read by the project's loader. A module made for another UNet (e.g. a real SD1.5
    AnimateDiff file) is refused."""
    from ..motion.loader import load_motion_module
    path = Path(path or MOTION_FILE)
    loaded = load_motion_module(str(path), dtype=torch.float32)
    spec, ours = loaded.recognised.spec, motion_spec()
    if _topology(spec) != _topology(ours):
        raise AnimLongError(
            f"{path.name} is a {spec.family} {spec.version} motion module for a UNet with channels "
            f"{list(spec.down_channels)}; it does not fit the small sprite model (channels "
            f"{list(ours.down_channels)}). A real AnimateDiff module needs a Stable Diffusion 1.5 checkpoint: use it "
            "in the AUTOMATIC1111 extension.")
    return loaded.motion


def _topology(spec):
    """What must match for the modules to fit the UNet (the positional table may be longer or shorter)."""
    return spec.down_channels, spec.down_per_level, spec.up_channels, spec.up_per_level, spec.mid_channels
