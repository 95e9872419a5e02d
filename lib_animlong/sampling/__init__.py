"""Windowed denoising of long videos through a model that sees a short window."""
from .rows import RowMap
from .steps import StepClock
from .windowed import WindowedDenoiser

__all__ = ["RowMap", "StepClock", "WindowedDenoiser"]
