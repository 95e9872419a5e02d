"""Real ldm UNets and random motion modules for tests (shared by the test files that need them)."""
from typing import Optional

import torch
from ldm.modules.diffusionmodules.openaimodel import UNetModel
from torch import nn

from lib_animlong.motion.module import MotionModuleSet
from lib_animlong.motion.synthetic import randomize_, sd15_spec

SD15 = dict(image_size=32, in_channels=4, out_channels=4, model_channels=320, attention_resolutions=[4, 2, 1],
            num_res_blocks=2, channel_mult=[1, 2, 4, 4], num_heads=8, use_spatial_transformer=True,
            transformer_depth=1, context_dim=768, use_checkpoint=False, legacy=False)
TINY_SD15 = dict(SD15, model_channels=32, num_heads=2, context_dim=32)
# SDXL's block layout (3 levels, attention on the two lower ones, no adm: ldm's UNetModel takes a single
# transformer depth and no adm_in_channels, neither of which moves a motion site).
SDXL_LAYOUT = dict(SD15, attention_resolutions=[4, 2], channel_mult=[1, 2, 4], num_heads=-1, num_head_channels=64,
                   use_linear_in_transformer=True, context_dim=2048)
TINY_SDXL_LAYOUT = dict(SDXL_LAYOUT, model_channels=32, num_head_channels=8, context_dim=32)
TINY_CONTEXT_DIM = 32


def tiny_sd15_unet(seed: int = 0, config=TINY_SD15) -> UNetModel:
    """The SD1.5 topology (same blocks and motion sites) at 1/10 of the width."""
    torch.manual_seed(seed)
    unet = UNetModel(**config).eval()
    for p in unet.parameters():  # ldm zero-initialises output convs: make every layer matter
        if p.abs().sum() == 0:
            nn.init.normal_(p, std=0.02)
    return unet


def tiny_sdxl_layout_unet(seed: int = 0) -> UNetModel:
    """SDXL's block layout at 1/10 of the width (context dim 32, like the tiny SD1.5 one)."""
    return tiny_sd15_unet(seed, TINY_SDXL_LAYOUT)


def meta_unet(config=SD15) -> UNetModel:
    """A full-size UNet on the `meta` device: real structure, no memory."""
    with torch.device("meta"):
        return UNetModel(**config)


def meta_sd15_unet() -> UNetModel:
    return meta_unet(SD15)


def tiny_motion(version: str = "v2", seed: int = 1, pe_length: Optional[int] = None) -> MotionModuleSet:
    """Motion modules for tiny_sd15_unet (width 32), every parameter random."""
    return randomize_(MotionModuleSet(sd15_spec(version, 32, pe_length)), seed).eval()


class LatentModel(nn.Module):
    """What k-diffusion's CompVisDenoiser wraps: `alphas_cumprod` and `apply_model(x, t, cond)`.

    cond is a tensor (cross-attention context) or {"c_crossattn": [tensor]} as the webui passes it.
    """

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.diffusion_model = unet
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2  # SD: scaled linear
        self.register_buffer("alphas_cumprod", torch.cumprod(1.0 - betas, dim=0).float())  # a buffer, as in ldm

    def apply_model(self, x, t, cond):
        if isinstance(cond, dict):
            cond = torch.cat(cond["c_crossattn"], 1)
        return self.diffusion_model(x, t, context=cond)
