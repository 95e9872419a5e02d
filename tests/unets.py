"""Real ldm UNets and random motion modules for tests (shared by the test files that need them)."""
import torch
from ldm.modules.diffusionmodules.openaimodel import UNetModel
from torch import nn

from lib_animlong.motion.module import MotionModuleSet, MotionSpec

SD15 = dict(image_size=32, in_channels=4, out_channels=4, model_channels=320, attention_resolutions=[4, 2, 1],
            num_res_blocks=2, channel_mult=[1, 2, 4, 4], num_heads=8, use_spatial_transformer=True,
            transformer_depth=1, context_dim=768, use_checkpoint=False, legacy=False)
TINY_SD15 = dict(SD15, model_channels=32, num_heads=2, context_dim=32)
TINY_CONTEXT_DIM = 32


def tiny_sd15_unet(seed: int = 0) -> UNetModel:
    """The SD1.5 topology (same blocks and motion sites) at 1/10 of the width."""
    torch.manual_seed(seed)
    unet = UNetModel(**TINY_SD15).eval()
    for p in unet.parameters():  # ldm zero-initialises output convs: make every layer matter
        if p.abs().sum() == 0:
            nn.init.normal_(p, std=0.02)
    return unet


def meta_sd15_unet() -> UNetModel:
    with torch.device("meta"):
        return UNetModel(**SD15)


def sd15_motion_spec(width: int = 320, version: str = "v2", pe_length: int = 32) -> MotionSpec:
    c = [width, width * 2, width * 4, width * 4]
    return MotionSpec(family="SD1.5", version=version, down_channels=tuple(c), down_per_level=2,
                      up_channels=tuple(reversed(c)), up_per_level=3,
                      mid_channels=c[-1] if version == "v2" else None, pe_length=pe_length,
                      pooled_unet_groupnorm=version == "v1")


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter random (proj_out and norm affines included), or the module proves nothing."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=generator) * 0.1
            p.copy_(noise + 1.0 if name.endswith("weight") and p.ndim == 1 else noise)
    return module


def tiny_motion(version: str = "v2", seed: int = 1, pe_length: int = 32) -> MotionModuleSet:
    return randomize_(MotionModuleSet(sd15_motion_spec(32, version, pe_length)), seed).eval()


class LatentModel(nn.Module):
    """What k-diffusion's CompVisDenoiser wraps: `alphas_cumprod` and `apply_model(x, t, cond)`.

    cond is a tensor (cross-attention context) or {"c_crossattn": [tensor]} as the webui passes it.
    """

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.diffusion_model = unet
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2  # SD: scaled linear
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0).float()

    def apply_model(self, x, t, cond):
        if isinstance(cond, dict):
            cond = torch.cat(cond["c_crossattn"], 1)
        return self.diffusion_model(x, t, context=cond)
