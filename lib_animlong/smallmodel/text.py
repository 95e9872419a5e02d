"""The small model's "text encoder": a prompt names a colour, a shape and a background; each slot is one
learned context token. A missing slot gets that slot's null token (all three null = the unconditional
prompt used for classifier-free guidance)."""
from typing import List, Sequence

import torch
from torch import nn

from ..errors import AnimLongError
from .sprites import BACKGROUNDS, COLOURS, SHAPES

CONTEXT_DIM = 32
SLOTS = (("colour", tuple(COLOURS)), ("shape", SHAPES), ("background", tuple(BACKGROUNDS)))
FILLER_WORDS = ("a", "an", "the", "on", "in", "over", "background")
VOCABULARY = tuple(word for _, words in SLOTS for word in (f"<no-{_}>",) + tuple(words))


def tokenize(prompt: str) -> List[int]:
    """The three token ids of a prompt, e.g. "red circle on gray". Unknown words are refused by name."""
    chosen = {slot: f"<no-{slot}>" for slot, _ in SLOTS}
    for word in prompt.lower().replace(",", " ").split():
        slot = next((name for name, words in SLOTS if word in words), None)
        if slot is None:
            if word in FILLER_WORDS:
                continue
            raise AnimLongError(
                f"The small sprite model does not know the word {word!r}. It knows colours "
                f"({', '.join(COLOURS)}), shapes ({', '.join(SHAPES)}) and backgrounds "
                f"({', '.join(BACKGROUNDS)}), e.g. \"red circle on gray\". Prompts for real Stable Diffusion "
                "models render in the AUTOMATIC1111 extension.")
        chosen[slot] = word
    return [VOCABULARY.index(chosen[slot]) for slot, _ in SLOTS]


class TextEmbedding(nn.Module):
    """Prompt token ids (B, 3) -> context (B, 3, CONTEXT_DIM) for the UNet's cross-attention."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(len(VOCABULARY), CONTEXT_DIM)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embedding(tokens)

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        device = self.embedding.weight.device
        return self(torch.tensor([tokenize(p) for p in prompts], device=device))


def drop_slots(tokens: torch.Tensor, generator: torch.Generator, p_slot: float, p_all: float) -> torch.Tensor:
    """Replace random slots (and, with p_all, whole prompts) by their null tokens: trains the
    unconditional and partial prompts."""
    nulls = torch.tensor([VOCABULARY.index(f"<no-{slot}>") for slot, _ in SLOTS])
    drop = torch.rand(tokens.shape, generator=generator) < p_slot
    drop |= torch.rand(tokens.shape[0], 1, generator=generator) < p_all
    return torch.where(drop, nulls.expand_as(tokens), tokens)
