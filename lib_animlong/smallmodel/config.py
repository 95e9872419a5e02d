"""The small model's topology and noise schedule: the real ldm UNetModel, AnimateDiff's linear betas."""
import torch

from ..motion.module import MotionSpec
from .latent import LATENT_CHANNELS
from .text import CONTEXT_DIM

UNET_CONFIG = dict(
    image_size=16, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS, model_channels=64,
    num_res_blocks=1, attention_resolutions=[2], channel_mult=(1, 2), num_head_channels=32,
    use_spatial_transformer=True, transformer_depth=1, context_dim=CONTEXT_DIM, legacy=False,
)
PE_LENGTH = 32
TIMESTEPS = 1000


def build_unet(**overrides):
    from ldm.modules.diffusionmodules.openaimodel import UNetModel
    return UNetModel(**{**UNET_CONFIG, **overrides})


def motion_spec(config=None) -> MotionSpec:
    """The motion modules for this UNet: one per res block going down, one per output block going up."""
    config = config or UNET_CONFIG
    levels = tuple(config["model_channels"] * m for m in config["channel_mult"])
    return MotionSpec(
        family="SD1.5", version="custom", down_channels=levels, down_per_level=config["num_res_blocks"],
        up_channels=tuple(reversed(levels)), up_per_level=config["num_res_blocks"] + 1, mid_channels=None,
        pe_length=PE_LENGTH)


def alphas_cumprod() -> torch.Tensor:
    """AnimateDiff's "linear" schedule: betas linear in [0.00085, 0.012] (no square root), 1000 steps."""
    betas = torch.linspace(0.00085, 0.012, TIMESTEPS, dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0).float()
