"""The main job's speed: one headless render, against plain batched calls of the same model in the same run.

    .venv/bin/python benchmarks/bench_render.py [--frames 256] [--steps 12] [--sampler dpmpp_2m]
                                                [--threads 0] [--load K] [--update]

Prints, for one render() through the real engine (the shipped sprite model, default options unless told):
- wall time: start-up (imports, weights, plans), sampling, writing the GIF and MP4, and in total;
- time inside the UNet (a hook around every UNet call, motion modules included) and frame evaluations
  (rows through the UNet: frames x 2 for CFG x model calls per step);
- the same number of frame evaluations done as plain batched calls of the same UNet with the same motion
  modules (independent 16-frame videos, no windows, no references), timed in this run just before and after
  the render at 32 rows a call (one window, cond + uncond) and at 128 rows; ratio = sampling wall over that.
- the thread counts the render ran with (the adaptive governor's choices, or --threads).

--load K starts K busy-loop processes for the whole run: a machine whose cores other programs use.
The machine this was written on is shared, so absolute times move from run to run; the ratios, measured
within one run, are the figures to compare. Writes out/bench_render.md; with --update, the "Render speed"
section of benchmarks/RESULTS.md instead.
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

STARTED = time.perf_counter()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BUSY_LOOP = "while True: pass"
OUT = os.path.join(ROOT, "out", "bench_render.md")   # where the figures go unless --update


def busy_processes(count: int):
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None, help="default: the renderer's")
    parser.add_argument("--sampler", default=None, help="default: the renderer's")
    parser.add_argument("--threads", type=int, default=0, help="0: the renderer's adaptive thread count")
    parser.add_argument("--load", type=int, default=0, help="busy-loop processes competing for the CPU")
    parser.add_argument("--update", action="store_true", help="write benchmarks/RESULTS.md, not out/")
    args = parser.parse_args(argv)
    load = busy_processes(args.load)
    try:
        return run(args, load)
    finally:
        for process in load:
            process.kill()
            process.wait()


def run(args, load) -> int:
    import torch
    from lib_animlong import render as renderer
    from lib_animlong.motion.call import MotionCall
    from lib_animlong.motion.inject import inject_motion
    from lib_animlong.options import AnimationOptions
    from lib_animlong.smallmodel import weights
    import results

    settings = renderer.RenderSettings(
        steps=args.steps or renderer.DEFAULT_STEPS, sampler=args.sampler or renderer.DEFAULT_SAMPLER,
        threads=args.threads, out_dir=os.path.join(tempfile.mkdtemp(prefix="bench_render-")), name="bench")
    options = AnimationOptions(frames=args.frames)
    imported = time.perf_counter() - STARTED

    calls = dict(seconds=0.0, rows=0, count=0, threads=collections.Counter())
    real_load = weights.load_image_model

    def timed_load(*a, **k):
        unet, embedding = real_load(*a, **k)
        began = []
        unet.register_forward_pre_hook(lambda module, inputs: began.append(time.perf_counter()))

        def finished(module, inputs, output):
            calls["seconds"] += time.perf_counter() - began.pop()
            calls["rows"] += inputs[0].shape[0]
            calls["count"] += 1
            calls["threads"][torch.get_num_threads()] += 1
        unet.register_forward_hook(finished)
        return unet, embedding

    def plain(rows: int, repeats: int = 3) -> float:
        """Best seconds per row of plain calls: `rows` rows as independent 16-frame videos."""
        unet, embedding = real_load()
        motion = weights.load_motion_model()
        governor = renderer.ThreadGovernor.for_settings(settings)
        x = torch.randn(rows, 12, 16, 16)
        t = torch.full((rows,), 500.0)
        context = embedding.encode(["red circle on black"]).expand(rows, -1, -1)
        best = float("inf")
        with torch.inference_mode(), inject_motion(unet, motion) as injection, \
                injection.slot.use(MotionCall(frames=16)):
            for _ in range(repeats + 1):          # the first call warms up
                if governor is not None:
                    governor.update()
                began = time.perf_counter()
                unet(x, t, context=context)
                best = min(best, time.perf_counter() - began)
        if governor is not None:
            governor.restore()
        return best / rows

    plain_before = {rows: plain(rows) for rows in (32, 128)}
    weights.load_image_model = timed_load
    try:
        began = time.perf_counter()
        result = renderer.render(settings, options, progress=False)
        wall = time.perf_counter() - began
    finally:
        weights.load_image_model = real_load
        shutil.rmtree(str(settings.out_dir), ignore_errors=True)
    plain_after = {rows: plain(rows) for rows in (32, 128)}
    per_row = {rows: (plain_before[rows] + plain_after[rows]) / 2 for rows in plain_before}
    best_plain = min(per_row.values()) * calls["rows"]
    sample = result.seconds["sample"]
    threads = ", ".join(f"{n} thread{'s' if n > 1 else ''}: {c} calls" for n, c in sorted(calls["threads"].items()))
    rows = [
        ("frames, sampler, steps", f"{args.frames}, {settings.sampler}, {settings.steps} "
                                   f"(schedule {options.schedule})"),
        ("competing busy loops", str(args.load)),
        ("imports before render()", f"{imported:.1f} s"),
        ("render(): load + plan", f"{result.seconds['load']:.1f} s"),
        ("render(): sampling", f"{sample:.1f} s"),
        ("render(): writing GIF + MP4", f"{result.seconds['write']:.1f} s"),
        ("render() in total", f"{wall:.1f} s"),
        ("time inside the UNet", f"{calls['seconds']:.1f} s ({calls['count']} calls)"),
        ("frame evaluations", f"{calls['rows']} ({calls['rows'] / (2 * args.frames * settings.steps):.2f} "
                              "per frame per step, cond + uncond counted apart)"),
        ("plain calls, 32 rows", f"{per_row[32] * 1000:.2f} ms/row (before {plain_before[32] * 1000:.2f}, "
                                 f"after {plain_after[32] * 1000:.2f})"),
        ("plain calls, 128 rows", f"{per_row[128] * 1000:.2f} ms/row (before {plain_before[128] * 1000:.2f}, "
                                  f"after {plain_after[128] * 1000:.2f})"),
        ("the evaluations as plain calls", f"{best_plain:.1f} s (at the faster batch size)"),
        ("**sampling / plain**", f"**{sample / best_plain:.2f}x**"),
        ("UNet time / plain", f"{calls['seconds'] / best_plain:.2f}x"),
        ("thread counts", threads or "-"),
    ]
    table = "| measure | value |\n| --- | --- |\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
    print(table, flush=True)
    command = " ".join(["benchmarks/bench_render.py"] + sys.argv[1:])
    body = f"`.venv/bin/python {command}` ({os.cpu_count()} CPUs)\n\n{table}\n"
    if args.update:
        results.write_section("Render speed", body)
        print(f"wrote the 'Render speed' section of {results.PATH}")
    else:
        path = OUT
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("## Render speed\n\n" + body)
        print(f"wrote {path} (pass --update to write benchmarks/RESULTS.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
