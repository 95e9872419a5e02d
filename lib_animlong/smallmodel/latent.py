"""A lossless, free "VAE": pixel unshuffle of RGB frames in [-1, 1] to 12-channel latents at half size."""
import torch
from torch.nn import functional as F

FACTOR = 2
LATENT_CHANNELS = 3 * FACTOR * FACTOR


def encode(pixels: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 12, H/2, W/2)."""
    return F.pixel_unshuffle(pixels, FACTOR)


def decode(latents: torch.Tensor) -> torch.Tensor:
    """(N, 12, h, w) -> (N, 3, 2h, 2w)."""
    return F.pixel_shuffle(latents, FACTOR)
