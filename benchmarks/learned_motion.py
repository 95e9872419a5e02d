"""Learned motion against a full-window reference: the shipped sprite model (models/, positional table 32)
renders N = 32 frames once with one window over all 32 frames (the learned-motion "limit", the oracle's
full denoiser) and again with every schedule at a shorter context length, from the same per-frame noise.

    .venv/bin/python benchmarks/learned_motion.py [--contexts 8,16] [--steps 8] [--prompts 2] [--rows 0,3]
    .venv/bin/python benchmarks/learned_motion.py --engine /work/main --label "old default (main)"

Every render is cached in out/learned_motion.json (a stopped run resumes; `--engine` runs the schedules of
another checkout, e.g. main before a change, under `--label`). The table goes to RESULTS.md only with
`--update`; otherwise it is printed.

Figures (benchmarks/quality.py, `video_figures` and `figures`), each the mean over prompts and seeds:
- to full, px: mean distance between the sprite's centroid and the full-window render's, frame by frame
  (same noise, so a schedule that did what the full window does scores 0).
- to full, pixels: mean absolute pixel difference (0-255) from the full-window render.
- speed, accel: the tracker's median px/frame and acceleration outliers per 100 frames.
- teleports: jumps per 100 frame pairs longer than twice the data's fastest speed (quality.TELEPORT).
- flicker: mean absolute difference of neighbouring frames (0-255).
- dynamic: dynamic degree, the mean Farneback optical-flow magnitude (px/frame, OpenCV).
- warp: warping error, mean absolute difference between a frame and its predecessor warped by the flow.
- period L, period comb: the power of the frame-difference energy's spectrum at the window period (the
  context length) and at the comb spacing (ceil(N / L)), over the median power of the spectrum (1: no
  period; the full window has no windows, so its figures say what chance gives at these N).
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "out" / "learned_motion.json"
SECTION = "Learned motion against a full-window reference"


READING = """How to read it. The full window is one window over all 32 frames, from the same per-frame noise:
the learned-motion limit (a schedule that reproduced it would score 0 in the two "to full" columns and the
full row's figures elsewhere). The motion modules were fine-tuned on clips of 8-32 frames for this (models/
MODEL.md: held-out loss 35.6% below the image model alone at 32 frames, 1.9% before), so the full window is
now inside what they learned: it moves at 1.27 px/frame (the data: 1.1; the 16-frame-trained modules' full
window crawled at 0.38). At 8 steps this small model is jittery even in one window (55 acceleration
outliers and 19 teleports per 100 frames): the reference's own noise, so rows below it on those two
columns are smoother than the reference, not better than it. Context 8 puts four windows on 32 frames,
context 16 two.

What it says.
- The default (uniform, no references) is the closest reference-free schedule to the full window's path
  (2.74 / 3.85 px at context 16 / 8; the peers 2.75-4.75), moves at 1.04-1.17 px/frame (full 1.27) and has
  no period at the window length (0.4-0.5 of the spectrum's median, the full window's 0.5).
- anchored-shift, the default before issue 11, strobes: 4.9-7.0 px/frame, 98 acceleration outliers and
  71-86 teleports per 100 frames, a peak of 17x at the window period (context 16).
- References to the window before (reference_positions window: true temporal distances) bring the path
  closer to the full window's (1.70-3.43 px; shifted golden + previous is the closest at context 8), but
  on 256 frames they do not cut teleports over two prompts and double the acceleration outliers on the
  second (see Quality on learned motion), so they are not the default.
- The spectral hub (spectral_steps 1, the oracle's best idea) is the smoothest (10-15 outliers, 3 teleports
  per 100) but slow (0.59-0.71 px/frame) and far from the full path (4.2-4.8 px): its hub is a comb the
  module reads as consecutive frames, so the low frequencies it imposes are a slower video's.
- FreeInit (1 iteration, fresh re-noise) and FreeNoise noise rescheduling move furthest from the full
  window (5.2-8.7 px): they change what is generated, not only how windows agree; FreeInit halves the
  warping error (4.4 against 7.1-7.9), a smoother but different video.

Where it falls short. No schedule is within 10% of the full window on every motion figure: the reference-free
schedules are 8-18% slower and smoother than it, and no row's path is within 1.7 px of it on a 32-px frame.
Two prompts and one seed per row (the CPU budget: each row is ~20 s of one core per render)."""


def rows(context: int):
    """(label, option changes) of every schedule measured, at one context length. References use
    reference_positions "window" (true temporal distances): "unique" puts every reference before the window,
    which reverses time for the references of the steps that run right to left."""
    overlap = max(1, context // 4)
    near = dict(references="previous", reference_positions="window")
    return [
        (f"uniform {overlap}, van der Corput, pyramid", dict(schedule="uniform", overlap=overlap,
                                                             references="none")),
        ("anchored-shift (default before issue 11)", dict(schedule="anchored-shift",
                                                          references="previous+anchors", global_steps=0.53)),
        (f"peer: overlap {overlap}, pyramid", dict(schedule="overlap", overlap=overlap, references="none")),
        (f"peer: uniform {overlap}, last wins", dict(schedule="uniform", overlap=overlap, fuse_weights="last",
                                                     references="none")),
        ("peer: freenoise windows, stride 4, pyramid", dict(schedule="freenoise", references="none")),
        (f"uniform {overlap} + previous", dict(near, schedule="uniform", overlap=overlap)),
        ("shifted, golden + previous", dict(near, schedule="shifted", phase_law="golden")),
        ("anchored-shift, no global steps, previous", dict(near, schedule="anchored-shift", global_steps=0.0)),
        (f"uniform {overlap} + previous + spectral hub", dict(near, schedule="uniform", overlap=overlap,
                                                              spectral_steps=1.0)),
        (f"uniform {overlap} + FreeInit 1, fresh re-noise", dict(schedule="uniform", overlap=overlap,
                                                                 references="none", freeinit_iterations=1,
                                                                 freeinit_renoise="fresh")),
        (f"uniform {overlap} + FreeNoise noise", dict(schedule="uniform", overlap=overlap, references="none",
                                                      noise="freenoise")),
    ]


def model_key() -> str:
    """The first 12 hex digits of the shipped motion file's sha256: renders of another model never mix."""
    import hashlib
    from lib_animlong.smallmodel.weights import MOTION_FILE
    return hashlib.sha256(MOTION_FILE.read_bytes()).hexdigest()[:12]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--contexts", default="8")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--rows", default="", help="comma-separated row numbers (default: all)")
    parser.add_argument("--engine", type=Path, default=ROOT, help="checkout whose lib_animlong renders")
    parser.add_argument("--label", default="", help="with --engine: the label of its default schedule's row")
    parser.add_argument("--update", action="store_true", help="write the table into RESULTS.md")
    parser.add_argument("--table-only", action="store_true", help="print the table from the cache")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.engine))
    sys.path.insert(1, str(ROOT / "benchmarks"))
    import quality
    import torch
    torch.set_num_threads(1)
    done = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    contexts = [int(c) for c in args.contexts.split(",")]
    jobs = [("full window (reference)", args.frames, {})]
    for context in contexts:
        if args.label:
            jobs.append((args.label, context, {}))
        else:
            chosen = rows(context)
            wanted = [chosen[int(i)] for i in args.rows.split(",") if i] or chosen
            jobs += [(label, context, changes) for label, changes in wanted]
    model = model_key()
    if not args.table_only:
        import ldm.modules.attention
        ldm.modules.attention.XFORMERS_IS_AVAILBLE = False
        with tempfile.TemporaryDirectory() as scratch:
            for label, context, changes in jobs:
                for prompt in quality.PROMPTS[:args.prompts]:
                    for seed in range(args.seeds):
                        key = (f"{label} | context {context} | {prompt} | seed {seed} | {args.steps} steps | "
                               f"model {model}")
                        if key in done:
                            continue
                        started = time.time()
                        frames = quality.render_frames(args.frames, context, changes, prompt, seed, args.steps,
                                                       Path(scratch))
                        done[key] = dict(label=label, context=context, prompt=prompt, seed=seed,
                                         seconds=time.time() - started, frames=frames.tolist())
                        CACHE.parent.mkdir(parents=True, exist_ok=True)
                        CACHE.write_text(json.dumps(done))
                        print(f"{key}: {done[key]['seconds']:.0f} s", flush=True)
    table = markdown({k: v for k, v in done.items() if k.endswith(f"model {model}")}, args, quality)
    print(table)
    if args.update:
        import results
        results.write_section(SECTION, table + "\n\n" + READING)


def summarise(done, args, quality):
    """label, context -> mean figures over prompts and seeds, with the distance to the full window."""
    full = {(v["prompt"], v["seed"]): np.asarray(v["frames"], dtype=np.uint8) for k, v in done.items()
            if v["label"] == "full window (reference)" and f"| {args.steps} steps" in k}
    grouped = {}
    for key, v in done.items():
        if f"| {args.steps} steps" not in key or (v["prompt"], v["seed"]) not in full or \
                v["prompt"] not in quality.PROMPTS[:args.prompts] or v["seed"] >= args.seeds:
            continue
        frames = np.asarray(v["frames"], dtype=np.uint8)
        reference = full[(v["prompt"], v["seed"])]
        colour = v["prompt"].split()[0]
        f = quality.figures(frames, colour)
        f.update(quality.video_figures(frames, window=v["context"] if v["context"] < len(frames) else 8,
                                       comb=-(-len(frames) // min(v["context"], len(frames)))))
        mine, theirs = quality.track(frames, colour)[0], quality.track(reference, colour)[0]
        f["to_full_px"] = float(np.nanmean(np.linalg.norm(mine - theirs, axis=1)))
        f["to_full_pixels"] = float(np.abs(frames.astype(float) - reference.astype(float)).mean())
        f["seconds"] = v["seconds"]
        grouped.setdefault((v["label"], v["context"]), []).append(f)
    return {k: {name: float(np.nanmean([r[name] for r in rs])) for name in rs[0]} for k, rs in grouped.items()}


COLUMNS = [("to_full_px", "to full, px", "{:.2f}"), ("to_full_pixels", "to full, pixels", "{:.1f}"),
           ("speed", "speed px/frame", "{:.2f}"), ("accel", "accel /100", "{:.1f}"),
           ("teleports", "teleports /100", "{:.1f}"),
           ("flicker", "flicker", "{:.2f}"), ("dynamic", "dynamic px/frame", "{:.2f}"),
           ("warp", "warp error", "{:.2f}"), ("period_window", "period L", "{:.1f}"),
           ("period_comb", "period comb", "{:.1f}"), ("seconds", "s / render", "{:.0f}")]


def markdown(done, args, quality) -> str:
    figures = summarise(done, args, quality)
    header = "| schedule | context | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(COLUMNS) + 2)]
    ordered = sorted(figures.items(), key=lambda kv: (kv[0][1] != args.frames, kv[0][1], kv[1]["to_full_px"]))
    for (label, context), f in ordered:
        cells = " | ".join(fmt.format(f[name]) for name, _, fmt in COLUMNS)
        lines.append(f"| {label} | {context} | {cells} |")
    return "\n".join(lines) + (
        f"\n\nN = {args.frames}, {args.steps} Euler steps (Karras), CFG 3, seeds 0..{args.seeds - 1}, prompts "
        f"{', '.join(repr(p) for p in quality.PROMPTS[:args.prompts])}, the shipped sprite model on the CPU; "
        "figures are means over the renders. `benchmarks/learned_motion.py` (see its docstring for each "
        "column; rows sorted by distance to the full window).")


if __name__ == "__main__":
    main()
