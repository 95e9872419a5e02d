"""shared.sd_model for the stand-in: a real tiny ldm UNet behind LatentDiffusion's surface
(alphas_cumprod, apply_model, get_learned_conditioning, encode/decode_first_stage), with a toy text
encoder (a fixed vector per word, 77 rows per 75 words like CLIP) and a toy VAE (8x8 pixels per latent) whose
encoder weights are bfloat16 and which refuses input of another dtype, as a real VAE's convolutions do."""
import zlib

import torch
import torch.nn.functional as F
from torch import nn

CONTEXT_DIM = 32


class _Inner(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.diffusion_model = unet
        self.conditioning_key = "crossattn"


class _FirstStage(nn.Module):
    def __init__(self, to_rgb):
        super().__init__()
        self.from_rgb = nn.Parameter(torch.linalg.pinv(to_rgb).to(torch.bfloat16), requires_grad=False)


class TinySdModel(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.model = _Inner(unet)
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0).float()
        self.parameterization = "eps"
        self.cond_stage_key = "txt"
        generator = torch.Generator().manual_seed(7)
        self.register_buffer("to_rgb", torch.randn(3, 4, generator=generator) * 0.5)
        self.latent_calls = []   # batch size of every encode_first_stage call
        self.first_stage_model = _FirstStage(self.to_rgb)
        self.cond_stage_model_empty_prompt = self.get_learned_conditioning([""])

    def apply_model(self, x, t, cond):
        return self.model.diffusion_model(x, t, context=torch.cat(cond["c_crossattn"], 1))

    def get_learned_conditioning(self, texts):
        encoded = [self._encode(text) for text in texts]
        rows = max(e.shape[0] for e in encoded)
        return torch.stack([torch.cat([e, e[-1:].expand(rows - e.shape[0], -1)]) for e in encoded])

    def _encode(self, text):
        words = [w for w in text.replace(",", " ").split() if w]
        chunks = [words[i:i + 75] for i in range(0, max(len(words), 1), 75)]
        rows = []
        for chunk in chunks:
            tokens = ["<bos>"] + chunk + ["<eos>"] * (76 - len(chunk))
            rows += [_word_vector(w) for w in tokens]
        return torch.stack(rows)

    def decode_first_stage(self, z):
        rgb = torch.einsum("oc,bchw->bohw", self.to_rgb, z)
        return torch.tanh(F.interpolate(rgb, scale_factor=8, mode="nearest"))

    def encode_first_stage(self, x):
        weight = self.first_stage_model.from_rgb
        if x.dtype != weight.dtype or x.device != weight.device:
            raise RuntimeError(f"Input type ({x.dtype}, {x.device}) and weight type ({weight.dtype}, "
                               f"{weight.device}) should be the same")
        self.latent_calls.append(x.shape[0])
        return torch.einsum("oc,bchw->bohw", weight, F.avg_pool2d(x, 8))

    def get_first_stage_encoding(self, encoded):
        return encoded


def _word_vector(word):
    generator = torch.Generator().manual_seed(zlib.crc32(word.encode()))
    return torch.randn(CONTEXT_DIM, generator=generator)
