"""Performance of the windowed path on the real ldm UNet with injected motion modules (CPU).

    .venv/bin/python benchmarks/bench_perf.py [--quick] [--update]

Prints, and writes to the "Performance" section of out/RESULTS.md, or with --update of the tracked
benchmarks/RESULTS.md (other sections kept):
- peak resident memory of one global-phase and one local-phase step vs N (16, 64, 256, 1024 frames,
  context length 16) for the default schedule and two reference variants, each N in a fresh subprocess,
  measured above everything allocated before the step (model, latents, conditioning), with a fixed glibc
  mmap threshold and, for the default, with glibc's default malloc; goal: beyond the latent-sized output,
  1024 frames within 1.5x of 64;
- wall time of the windowed path vs the plain batch at N = context length (goal: within 5%), and the
  engine's own cost per step (planning, slicing, fusion) with an identity model;
- frames pushed through the UNet per frame per step for every schedule.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))  # tests/unets.py: LatentModel, randomize_

import torch  # noqa: E402

from lib_animlong import kdiffusion  # noqa: E402
from lib_animlong.motion.call import CallSlot, MotionCall  # noqa: E402
from lib_animlong.options import SCHEDULES, AnimationOptions  # noqa: E402
from lib_animlong.sampling import WindowedDenoiser  # noqa: E402

import results  # noqa: E402

OUT = os.path.join(ROOT, "out", "RESULTS.md")   # where the figures go unless --update

CONTEXT = 16
STEPS = 20
MEMORY_FRAMES = (16, 64, 256, 1024)
# a mid-size SD1.5-shaped UNet: 3 levels, spatial transformers, 16x16 latents (128 px)
UNET = dict(image_size=16, in_channels=4, out_channels=4, model_channels=64, num_res_blocks=1,
            attention_resolutions=[2, 4], channel_mult=(1, 2, 4), num_head_channels=32,
            use_spatial_transformer=True, transformer_depth=1, context_dim=128, legacy=False)
LATENT = (4, 16, 16)
TOKENS = 8


def sigmas(steps: int = STEPS) -> torch.Tensor:
    sampling, _ = kdiffusion.load()
    return sampling.get_sigmas_karras(steps, 0.03, 14.6, rho=7.0)


# --- frames pushed per frame per step -------------------------------------------------------------------

def pushed_per_frame(options: AnimationOptions, steps: int = 30) -> float:
    """Rows the UNet sees per frame per step, counted through the real denoiser with a null model."""
    slot, pushed = CallSlot(), []

    def count(x, sigma):
        pushed.append(x.shape[0])
        return x

    schedule = sigmas(steps)
    denoiser = WindowedDenoiser(count, slot, options, sigmas=schedule)
    x = torch.zeros(options.frames, 1)
    for step in range(steps):
        denoiser(x, schedule[step], step=step)
    return sum(pushed) / (options.frames * steps)


def cost_table() -> str:
    lines = ["| schedule | N=64 | N=256 | N=64 loop | N=256 loop |", "| --- | --- | --- | --- | --- |"]
    for schedule in SCHEDULES:
        cells = [f"{pushed_per_frame(AnimationOptions(frames=n, schedule=schedule, closed_loop=loop)):.2f}"
                 for loop in (False, True) for n in (64, 256)]
        lines.append(f"| {schedule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- the real UNet with injected modules -----------------------------------------------------------------

def build():
    """(CompVisDenoiser over the UNet, the injection context manager) with random weights."""
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    from lib_animlong.motion.inject import inject_motion
    from lib_animlong.motion.module import MotionModuleSet, MotionSpec
    from unets import LatentModel, randomize_

    _, external = kdiffusion.load()
    unet = randomize_(UNetModel(**UNET), seed=0).eval()
    levels = tuple(UNET["model_channels"] * m for m in UNET["channel_mult"])
    spec = MotionSpec(family="SD1.5", version="v2", down_channels=levels, down_per_level=UNET["num_res_blocks"],
                      up_channels=tuple(reversed(levels)), up_per_level=UNET["num_res_blocks"] + 1,
                      mid_channels=levels[-1], pe_length=32)
    motion = randomize_(MotionModuleSet(spec), seed=1).eval()
    return external.CompVisDenoiser(LatentModel(unet)), inject_motion(unet, motion)


def conditioning(rows: int) -> dict:
    return {"c_crossattn": [torch.randn(rows, TOKENS, UNET["context_dim"])]}


# --- memory vs N (one subprocess per N) --------------------------------------------------------------------

def _high_water_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))


def _reset_high_water() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def variant_label(knobs: dict) -> str:
    """The schedule and reference mode a variant actually runs, read from AnimationOptions (its defaults
    for what `knobs` leaves out), e.g. "default (uniform, references none)"."""
    options = AnimationOptions(**knobs)
    text = f"{options.schedule}, references {options.references}"
    return f"default ({text})" if not knobs else text


MEMORY_VARIANTS = tuple((variant_label(knobs), knobs) for knobs in (
    {}, {"references": "previous"}, {"schedule": "shifted", "references": "none"}))


def memory_child(frames: int, variant: int) -> dict:
    """Peak above baseline of a global-phase step (1) and a local-phase step (STEPS - 3) of one variant, and
    the most frames its reference buffers hold at once in each."""
    torch.manual_seed(0)
    model, injection = build()
    schedule = sigmas()
    options = AnimationOptions(frames=frames, **MEMORY_VARIANTS[variant][1])
    peaks, seconds, held = [], [], []
    with injection as injected, torch.no_grad():
        slot = injected.slot
        x = torch.randn(2 * frames, *LATENT) * schedule[0]
        cond = conditioning(2 * frames)

        def counted(*args, **kwargs):
            buffers = slot.current.reference
            out = model(*args, **kwargs)
            held[-1] = max(held[-1], len(buffers.slots) if buffers is not None else 0)
            return out

        denoiser = WindowedDenoiser(counted, slot, options, sigmas=schedule)
        warm = 2 * min(frames, CONTEXT)  # one window-sized call: first-call costs out of the measurement
        with slot.use(MotionCall(frames=warm // 2)):
            model(x[:warm], schedule[0] * torch.ones(warm), cond=conditioning(warm))
        for step in (1, STEPS - 3):
            held.append(0)
            _reset_high_water()
            before = _high_water_kb()
            start = time.perf_counter()
            denoiser(x, schedule[step] * torch.ones(2 * frames), cond=cond, step=step)
            seconds.append(time.perf_counter() - start)
            peaks.append(_high_water_kb() - before)
    return dict(frames=frames, peaks_kb=peaks, held=held, seconds=seconds,
                latent_kb=x.numel() * x.element_size() // 1024)


def memory_table(frame_counts, variants, fixed_threshold: bool = True, runs: int = 1) -> str:
    """One row per (variant, N): the median of `runs` children, with the range when there are several.

    "vs 64": the peak beyond the latent-sized output (the goal's measure) over the same at 64 frames."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    if fixed_threshold:
        # every tensor of 128 KiB or more is a fresh mapping, so the high-water mark counts those alive at
        # once, not how glibc's heap happened to be reused (smaller ones still reuse freed heap)
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    lines = ["| variant | frames | global step: MiB above baseline | vs 64 | local step: MiB | vs 64 | "
             "frames held, global / local | latent, cond + uncond (MiB) | s / step |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for variant in variants:
        rows = []
        for frames in frame_counts:
            children = []
            for _ in range(runs):
                child = subprocess.run([sys.executable, __file__, "--memory-child", str(frames), str(variant)],
                                       capture_output=True, text=True, check=True, env=env)
                children.append(json.loads(child.stdout.strip().splitlines()[-1]))
                print(MEMORY_VARIANTS[variant][0], children[-1], flush=True)
            peaks = [[c["peaks_kb"][phase] for c in children] for phase in (0, 1)]
            rows.append(dict(children[0], peaks=peaks, median=[statistics.median(p) for p in peaks],
                             seconds=statistics.mean(t for c in children for t in c["seconds"])))
        base = next((r for r in rows if r["frames"] == 64), rows[0])
        for r in rows:
            cells = []
            for phase in (0, 1):
                peak, peak64 = r["median"][phase], base["median"][phase]
                low, high = min(r["peaks"][phase]) / 1024, max(r["peaks"][phase]) / 1024
                spread = f" ({low:.0f}-{high:.0f})" if runs > 1 else ""
                cells.append(f"{peak / 1024:.1f}{spread} | "
                             f"{(peak - r['latent_kb']) / (peak64 - base['latent_kb']):.2f}x")
            lines.append(f"| {MEMORY_VARIANTS[variant][0]} | {r['frames']} | {cells[0]} | {cells[1]} | "
                         f"{r['held'][0]} / {r['held'][1]} | {r['latent_kb'] / 1024:.1f} | {r['seconds']:.2f} |")
    return "\n".join(lines)


# --- wall time at N = L ------------------------------------------------------------------------------------

def wall_time(repeats: int) -> str:
    frames = CONTEXT
    torch.manual_seed(0)
    model, injection = build()
    schedule = sigmas()
    plain_times, windowed_times = [], []
    with injection as injected, torch.no_grad():
        slot = injected.slot
        x = torch.randn(2 * frames, *LATENT) * schedule[0]
        sigma = schedule[1] * torch.ones(2 * frames)
        cond = conditioning(2 * frames)
        denoiser = WindowedDenoiser(model, slot, AnimationOptions(frames=frames), sigmas=schedule)

        def plain():
            with slot.use(MotionCall(frames=frames)):
                return model(x, sigma, cond=cond)

        same = torch.equal(plain(), denoiser(x, sigma, cond=cond))
        for _ in range(repeats):
            for runs, fn in ((plain_times, plain), (windowed_times, lambda: denoiser(x, sigma, cond=cond))):
                start = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - start)
    plain_s, windowed_s = statistics.median(plain_times), statistics.median(windowed_times)
    return (f"N = L = {frames}, cond + uncond rows, median of {repeats} alternating runs: plain batch "
            f"{plain_s:.3f} s, windowed {windowed_s:.3f} s, ratio {windowed_s / plain_s:.3f} "
            f"(outputs bit-identical: {same}). At N = L the default plan is one window over all frames, which "
            "the denoiser passes straight to the model; the table gives the cost of planning, slicing and "
            "fusion on their own.")


def engine_overhead(frame_counts) -> str:
    """Slicing, planning and fusion alone: the default plan with an identity model in place of the UNet."""
    schedule = sigmas()
    lines = ["| frames | engine ms / step (identity model) |", "| --- | --- |"]
    for frames in frame_counts:
        slot = CallSlot()
        denoiser = WindowedDenoiser(lambda x, sigma, cond: x, slot, AnimationOptions(frames=frames), sigmas=schedule)
        x, cond = torch.randn(2 * frames, *LATENT), conditioning(2 * frames)
        start = time.perf_counter()
        for step in range(STEPS):
            denoiser(x, schedule[step] * torch.ones(2 * frames), cond=cond, step=step)
        lines.append(f"| {frames} | {(time.perf_counter() - start) / STEPS * 1000:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N up to 256, fewer repeats")
    parser.add_argument("--update", action="store_true", help="write benchmarks/RESULTS.md, not out/RESULTS.md")
    parser.add_argument("--memory-child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.memory_child:
        print(json.dumps(memory_child(*args.memory_child)))
        return 0
    costs = cost_table()
    print(costs, flush=True)
    timing = wall_time(3 if args.quick else 7) + "\n\n" + engine_overhead(MEMORY_FRAMES)
    print(timing, flush=True)
    frame_counts = MEMORY_FRAMES[:3] if args.quick else MEMORY_FRAMES
    memory = memory_table(frame_counts, (0,) if args.quick else range(len(MEMORY_VARIANTS)))
    print(memory, flush=True)
    default_malloc = memory_table(frame_counts[1:], (0,), fixed_threshold=False, runs=3)
    print(default_malloc, flush=True)
    body = "\n\n".join([
        "`.venv/bin/python benchmarks/bench_perf.py` (CPU, one thread). Mid-size SD1.5-shaped ldm UNet "
        f"({UNET['model_channels']} channels x {UNET['channel_mult']}, latents {LATENT}) with injected motion "
        "modules, random weights, default options (context length 16).",
        "### Peak resident memory of one step vs N\n\n" + memory + "\n\n"
        "Measured in a fresh subprocess per row, above everything allocated before the step (model, latents, "
        "conditioning), with a fixed glibc mmap threshold (128 KiB): larger tensors are fresh mappings, so the "
        "high-water mark counts those alive at once (smaller ones still reuse freed heap). 'vs 64' is the "
        "goal's measure: the peak less the latent-sized output, over the same at 64 frames. The engine's own "
        "memory is O(window) (slicing, fused output written into one preallocated tensor, activations of one "
        "call). Reference buffers hold the LayerNorm'd inputs of the frames a later window of the step still "
        "reads, in every temporal layer (about 1.4 MiB a frame in this UNet, cond + uncond), in one tensor of "
        "slots per layer sized for the most frames the step holds at once ('frames held'). At global steps "
        "that is the hub comb. At local steps each anchor window (16 anchors) is computed just before its "
        "first reader and a body window reads the anchors of one anchor window only (the one ahead), so the "
        "buffers hold one anchor window, the previous window's edge and what the next window reads of the "
        "current one: 24 frames from 256 frames on, however long the video (up to 26 where the last anchor "
        "window is short, 36 looped), against 10-12 at 64 where the whole video has 4 anchors. Those extra "
        "frames are the local step's excess at 1024 over 64. 'previous only' reads the whole previous "
        "window (16 references) and holds 32; 'no references' holds none. Before this (commit 9c29ffd: a body "
        "window read the nearest anchors of two anchor windows, 35-36 frames held) the local step at 1024 "
        "frames took 106.8 MiB here (1.75x).\n\n"
        "With glibc's default malloc (no fixed threshold: what a CPU run gets; same measurement, default "
        "variant, median and range of 3 runs in MiB):\n\n" + default_malloc + "\n\n"
        "Here glibc raises its mmap threshold as large blocks are freed, so activations of every size are "
        "served from the heap and reused: peaks are lower but move by tens of MiB from run to run with the "
        "heap's layout, and the ratios to 64 frames mean little (see the ranges). What would scatter the heap "
        "is long-lived small tensors among the activations: reference frames cloned one by one (commit "
        "9c29ffd) took a local step at 1024 frames to 262 MiB (256 frames: 224 MiB; one run each) for ~50 "
        "MiB of frames alive. The slot tensors, allocated once per step, keep it near the frames held. With "
        "the fixed threshold above they cost a little more than clones did (about 9 MiB at 64 frames), "
        "because a slot tensor is a fresh mapping counted whole while the smaller clones reused freed heap.",
        "### Wall time\n\n" + timing,
        "### Frames pushed per frame per step (30 steps)\n\n" + costs,
    ])
    path = results.PATH if args.update else OUT
    os.makedirs(os.path.dirname(path), exist_ok=True)
    results.write_section("Performance", body, path=path)
    print(f"wrote the 'Performance' section of {path}"
          + ("" if args.update else " (pass --update to write benchmarks/RESULTS.md)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
