"""Procedural moving-sprite videos: one shape of one colour gliding at constant velocity over a background,
bouncing off the borders. A video is fully described by a `SpriteVideo`; any frame of it can be drawn
directly (the bounce is a closed-form reflection), so videos have any length and are deterministic per seed.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
import torch

SIZE = 32
SUPERSAMPLE = 4

COLOURS = {
    "red": (1.0, 0.15, 0.15),
    "green": (0.15, 0.9, 0.2),
    "blue": (0.2, 0.35, 1.0),
    "yellow": (1.0, 0.9, 0.1),
    "cyan": (0.1, 0.9, 0.95),
    "magenta": (0.95, 0.2, 0.9),
}
SHAPES = ("circle", "square", "triangle", "diamond")
BACKGROUNDS = {
    "black": (0.0, 0.0, 0.0),
    "gray": (0.35, 0.35, 0.35),
    "white": (0.92, 0.92, 0.92),
}
RADIUS_RANGE = (4.0, 6.5)     # half-size of the sprite, pixels
SPEED_RANGE = (0.4, 1.6)      # pixels per frame


@dataclass(frozen=True)
class SpriteVideo:
    shape: str
    colour: str
    background: str
    radius: float
    start: Tuple[float, float]     # centre (x, y) at frame 0, pixels
    velocity: Tuple[float, float]  # pixels per frame

    @property
    def prompt(self) -> str:
        return f"{self.colour} {self.shape} on {self.background}"


def random_video(generator: np.random.Generator) -> SpriteVideo:
    radius = float(generator.uniform(*RADIUS_RANGE))
    speed = float(generator.uniform(*SPEED_RANGE))
    angle = float(generator.uniform(0, 2 * np.pi))
    start = tuple(float(v) for v in generator.uniform(radius, SIZE - radius, size=2))
    return SpriteVideo(
        shape=SHAPES[generator.integers(len(SHAPES))],
        colour=list(COLOURS)[generator.integers(len(COLOURS))],
        background=list(BACKGROUNDS)[generator.integers(len(BACKGROUNDS))],
        radius=radius, start=start, velocity=(speed * np.cos(angle), speed * np.sin(angle)))


def video_for_seed(seed: int) -> SpriteVideo:
    return random_video(np.random.default_rng(seed))


def centres(video: SpriteVideo, frames: Sequence[int]) -> np.ndarray:
    """(F, 2) sprite centres: straight-line motion folded back at the borders (elastic bounce)."""
    t = np.asarray(frames, dtype=np.float64)[:, None]
    low, span = video.radius, SIZE - 2 * video.radius
    unfolded = np.asarray(video.start)[None] - low + np.asarray(video.velocity)[None] * t
    folded = np.mod(unfolded, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def _inside(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= r * 0.85
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= r * 1.15
    if shape == "triangle":  # pointing up, base at dy = +r
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) * 2.0 <= (dy + r) * 1.0)
    raise ValueError(shape)


def draw(video: SpriteVideo, frames: Sequence[int]) -> torch.Tensor:
    """Frames of a video as (F, 3, 32, 32) float in [-1, 1], anti-aliased by 4x4 supersampling."""
    fine = (np.arange(SIZE * SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    xs, ys = np.meshgrid(fine, fine)
    where = centres(video, frames)
    inside = _inside(video.shape, xs[None] - where[:, 0, None, None], ys[None] - where[:, 1, None, None],
                     video.radius)
    coverage = inside.reshape(len(where), SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE).mean(axis=(2, 4))
    colour = np.asarray(COLOURS[video.colour])[None, :, None, None]
    background = np.asarray(BACKGROUNDS[video.background])[None, :, None, None]
    image = background + coverage[:, None] * (colour - background)
    return torch.from_numpy(image * 2 - 1).float()


def batch(generator: np.random.Generator, videos: int, frames: int, max_start: int = 4096):
    """`videos` random clips of `frames` consecutive frames each, at random times: (videos*frames, 3, 32, 32)
    pixels and the prompts (one per video)."""
    clips, prompts = [], []
    for _ in range(videos):
        video = random_video(generator)
        first = int(generator.integers(max_start))
        clips.append(draw(video, range(first, first + frames)))
        prompts.append(video.prompt)
    return torch.cat(clips), prompts
