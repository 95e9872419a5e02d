"""Windowed denoising of long videos through a model that sees a short window."""
from .windowed import WindowedDenoiser

__all__ = ["WindowedDenoiser"]
