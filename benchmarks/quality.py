"""Quality on learned motion: 256-frame renders of the shipped sprite model with every schedule, each sprite
tracked by its colour mask.

    .venv/bin/python benchmarks/quality.py [--frames 256] [--steps 16] [--write-results]

Figures per render (the sprite is found as the pixels near the prompt's colour):
- seam: the largest centroid jump between neighbouring frames at a window boundary of the last denoising
  step's plan, over the median jump between the other neighbouring frames (1 = no seam).
- spike: the largest jump anywhere over the median jump (seams of earlier steps, teleports).
- speed: the median jump in pixels per frame (a sprite that stands still is perfectly "smooth").
- accel: frames per 100 whose acceleration |c[i+1] - 2c[i] + c[i-1]| exceeds 1.5 px/frame^2 (a bounce
  is one such frame; the training data's own rate is the reference row).
- lost: frames where the sprite's area is under a third of its median (it vanished or split).
- colour drift / size drift: mean sprite colour (RGB 0-255 distance) and area ratio, last 16 frames vs
  first 16.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib_animlong.options import SCHEDULES, AnimationOptions  # noqa: E402
from lib_animlong.render import RenderSettings, render  # noqa: E402
from lib_animlong.smallmodel import sprites  # noqa: E402

PROMPTS = ("red circle on black", "yellow square on gray", "blue triangle on white")
MASK_TOLERANCE = 0.3      # max-abs RGB distance (0..1) from the prompt's colour
ACCEL_OUTLIER = 1.5       # px / frame^2
EDGE = 16                 # frames compared for drift at each end
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Quality on learned motion"


def track(frames: np.ndarray, colour: str):
    """frames (N, 32, 32, 3) uint8 -> centroids (N, 2) (NaN where absent), areas (N,), mean colours (N, 3)."""
    rgb = frames.astype(np.float64) / 255
    inside = np.abs(rgb - np.asarray(sprites.COLOURS[colour])).max(axis=-1) < MASK_TOLERANCE
    areas = inside.sum(axis=(1, 2)).astype(np.float64)
    ys, xs = np.mgrid[:frames.shape[1], :frames.shape[2]] + 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = np.stack([(inside * xs).sum((1, 2)) / areas, (inside * ys).sum((1, 2)) / areas], axis=1)
        colours = (inside[..., None] * rgb).sum((1, 2)) / areas[:, None] * 255
    return centroids, areas, colours


def boundary_pairs(options: AnimationOptions, steps: int) -> np.ndarray:
    """pairs (i, i+1) split by a window edge of the last step's plan: bool (N-1,)."""
    from lib_animlong.context import plan
    split = np.zeros(options.frames - 1, dtype=bool)
    for window in plan(steps - 1, steps, options.frames, options):
        frames = sorted(window.frames)
        first, last = frames[0], frames[-1]
        if first > 0:
            split[first - 1] = True
        if last < options.frames - 1:
            split[last] = True
    return split


def figures(frames: np.ndarray, colour: str, boundaries=None) -> dict:
    centroids, areas, colours = track(frames, colour)
    jumps = np.linalg.norm(np.diff(centroids, axis=0), axis=1)
    accel = np.linalg.norm(centroids[2:] - 2 * centroids[1:-1] + centroids[:-2], axis=1)
    median_area = np.nanmedian(areas)
    present = areas >= median_area / 3
    result = dict(
        speed=float(np.nanmedian(jumps)),
        spike=float(np.nanmax(jumps) / np.nanmedian(jumps)),
        accel=float(100 * np.nanmean(accel > ACCEL_OUTLIER)),
        lost=int((~present).sum()),
        colour_drift=float(np.linalg.norm(np.nanmean(colours[-EDGE:], 0) - np.nanmean(colours[:EDGE], 0))),
        size_drift=float(np.nanmean(areas[-EDGE:]) / np.nanmean(areas[:EDGE])),
    )
    if boundaries is not None and boundaries.any() and (~boundaries).any():
        result["seam"] = float(np.nanmax(jumps[boundaries]) / np.nanmedian(jumps[~boundaries]))
    return result


def data_reference(frames: int, videos: int = 16) -> dict:
    """The same figures on the training data's own videos (what a perfect model would score)."""
    rows = []
    for seed in range(videos):
        video = sprites.video_for_seed(seed)
        pixels = sprites.draw(video, range(frames))
        rows.append(figures(((pixels.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8),
                            video.colour))
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--schedules", default=",".join(SCHEDULES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gifs", default="anchored-shift,overlap", help="schedules whose first render is kept")
    parser.add_argument("--write-results", action="store_true", help="replace the section in RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import ldm.modules.attention
    ldm.modules.attention.XFORMERS_IS_AVAILBLE = False

    keep = set(filter(None, args.gifs.split(",")))
    rows = [("training data (reference)", data_reference(args.frames), 0.0)]
    print(f"{'schedule':28s} seam  spike speed accel lost colour size  s/render", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        for schedule in args.schedules.split(","):
            options = AnimationOptions(frames=args.frames, schedule=schedule)
            boundaries = boundary_pairs(options, args.steps)
            per_render, seconds = [], []
            for p, prompt in enumerate(PROMPTS[:args.prompts]):
                for seed in range(args.seeds):
                    first = p == 0 and seed == 0 and schedule in keep
                    settings = RenderSettings(
                        prompt=prompt, seed=seed, steps=args.steps, formats=("GIF",), scale=1 if not first else 3,
                        out_dir=ROOT / "benchmarks" / "gifs" if first else Path(scratch), name=f"sprites-{schedule}")
                    started = time.time()
                    result = render(settings, options, progress=False)
                    seconds.append(time.time() - started)
                    small = result.frames[:, ::settings.scale, ::settings.scale]
                    per_render.append(figures(small, prompt.split()[0], boundaries))
            mean = {k: float(np.mean([r[k] for r in per_render])) for k in per_render[0]}
            rows.append((schedule, mean, float(np.mean(seconds))))
            print(format_row(*rows[-1]), flush=True)
    table = markdown(rows, args)
    print(table)
    if args.write_results:
        write_section(table)


def format_row(name, f, seconds):
    seam = f"{f['seam']:5.2f}" if "seam" in f else "    -"
    return (f"{name:28s} {seam} {f['spike']:5.2f} {f['speed']:5.2f} {f['accel']:5.1f} {f['lost']:4.0f} "
            f"{f['colour_drift']:6.1f} {f['size_drift']:5.2f} {seconds:6.1f}")


def markdown(rows, args) -> str:
    lines = ["| schedule | seam | spike | speed px/frame | accel outliers /100 | lost frames | colour drift | "
             "size drift | s / render |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, f, seconds in rows:
        seam = f"{f['seam']:.2f}" if "seam" in f else "-"
        lines.append(f"| {name} | {seam} | {f['spike']:.2f} | {f['speed']:.2f} | {f['accel']:.1f} | "
                     f"{f['lost']:.1f} | {f['colour_drift']:.1f} | {f['size_drift']:.2f} | "
                     f"{seconds:.0f} |" if seconds else
                     f"| {name} | {seam} | {f['spike']:.2f} | {f['speed']:.2f} | {f['accel']:.1f} | "
                     f"{f['lost']:.1f} | {f['colour_drift']:.1f} | {f['size_drift']:.2f} | - |")
    lines.append("")
    lines.append(f"{args.frames} frames, {args.steps} Euler steps, CFG 3, prompts: "
                 f"{', '.join(PROMPTS[:args.prompts])}; seeds 0..{args.seeds - 1}; mean over renders.")
    return "\n".join(lines)


def write_section(table: str) -> None:
    """Replace the table between this section's markers in RESULTS.md; the rest of the section (the
    written analysis) and every other section stay as they are. Appends the section if it is missing."""
    begin, end = "<!-- quality-table:begin -->", "<!-- quality-table:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{begin}\n{table}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
