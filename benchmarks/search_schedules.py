"""Search window recipes in the oracle world for the best seam / coherence / cost.

    .venv/bin/python benchmarks/search_schedules.py [N] [--videos V]

Builds recipes directly (more knobs than the options expose), runs each through the real WindowedDenoiser
and sampler, and prints seam, coherence, cov error and cost per recipe, best first.
"""
import argparse
import os
import sys
import time
from dataclasses import replace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib_animlong.context.recipe import Recipe, build  # noqa: E402

from oracle_run import initial_noise, run  # noqa: E402
from oracle_world import CHANNELS, figures  # noqa: E402

CONTEXT = 16


def candidates(n: int):
    base = Recipe(comb_links="hub", shift_combs=False, comb_levels=True, own=16, previous_refs=8,
                  anchor_refs=8, anchor_stride=8, global_steps=16)
    yield base
    yield replace(base, previous_refs=4, anchor_refs=12)
    yield replace(base, shift_combs=True)
    yield replace(base, phase_law="van-der-corput")


def score(f, n):
    limit = 1.25 if n <= 64 else 1.10
    return max(f.seam - 1.10, 0) + max(0.90 - f.coherence, 0) + max(f.cost - limit, 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=64)
    parser.add_argument("--videos", type=int, default=0)
    parser.add_argument("--loop", action="store_true")
    args = parser.parse_args(argv)
    n = args.n
    videos = args.videos or (64 if n <= 64 else 16)
    noise = initial_noise(n, videos, CHANNELS, 0)
    full, _ = run(None, n, args.loop, noise)
    rows = []
    started = time.time()
    for recipe in candidates(n):
        recipe = replace(recipe, loop=args.loop)
        result, cost = run(lambda step: build(step, n, CONTEXT, recipe), n, args.loop, noise)
        f = figures(result, full, n, CONTEXT, cost)
        rows.append((score(f, n), f, recipe))
        changed = {k: v for k, v in recipe.__dict__.items() if v != getattr(Recipe(), k)}
        print(f"seam {f.seam:.3f} coh {f.coherence:.3f} cov {f.cov_error:.3f} loop {f.loop_seam:.2f} "
              f"cost {f.cost:.3f}  {changed}", flush=True)
    print(f"--- best first ({time.time() - started:.0f} s)")
    for s, f, recipe in sorted(rows, key=lambda r: r[0])[:5]:
        changed = {k: v for k, v in recipe.__dict__.items() if v != getattr(Recipe(), k)}
        print(f"{s:.3f}: seam {f.seam:.3f} coh {f.coherence:.3f} cost {f.cost:.3f} {changed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
