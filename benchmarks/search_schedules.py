"""Search window recipes in the oracle world for the best seam / coherence / cost.

    .venv/bin/python benchmarks/search_schedules.py [--write]

Builds recipes directly (more knobs than the options expose), runs each at N = 64 and N = 256 through the
real WindowedDenoiser and Euler sampler, prints every point and the Pareto front (seam, coherence error,
cost at N = 256), and with --write puts them in the "Oracle: schedule search" section of RESULTS.md.
About two minutes on one core.
"""
import argparse
import os
import sys
import time
from dataclasses import fields, replace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib_animlong.context.recipe import Recipe, build  # noqa: E402

from oracle_run import initial_noise, run  # noqa: E402
from oracle_world import CHANNELS, figures  # noqa: E402
import results  # noqa: E402

CONTEXT = 16
VIDEOS = 256
DEFAULT = Recipe(own=16, previous_refs=4, anchor_refs=12, anchor_stride=16, global_steps=16, comb_links="hub",
                 shift_combs=False, comb_levels=True, phase_law="van-der-corput")
NOTES = """What was tried, in order (each step kept the best of the one before):
1. Classic layouts alone (overlap, uniform, shifted with golden / van der Corput / random phase, dilated,
   FreeNoise): seams 1.4 to 6.5, coherence near 0 at any cost.
2. References to the previous window (alternating direction) and to strided anchors computed first:
   seams down to ~1.2, coherence up to ~0.4-0.7 (anchors as references only, or as outputs: the anchor
   window sees no neighbours, so using its output puts seams next to every anchor).
3. Sigma-dependent layout: the noisiest steps decide the shared identity, the middle steps decide the
   seams. Global steps with combs (every d-th frame) spanning the video, then local windows. Combs that
   each look at the comb before them (chain) keep coherence ~0.85; combs that all look at one hub comb
   computed first keep it above 0.9 (a star keeps every window's estimate of the identity the same).
4. Coarse to fine: the non-hub windows of the global steps narrow from combs of every (N/L)-th frame to
   every 2nd frame; this repairs most of what the combs do to local structure (N = 256 seam 1.33 -> 1.09).
5. Local steps: windows of L own frames + nearest frames of the previous window + nearest anchors
   (computed first, only to be looked at): the anchors give every window a view of the side it has not
   computed yet. Anchors every L frames are as good as every L/2 (seeds 1-3: worst seam 0.98 / 1.05 at
   N = 64 / 256 against 0.98 / 1.08) for half the extra cost; strides that do not divide L (12) are worse
   (1.16 / 1.19). L/4 previous + 3L/4 anchor references keep coherence ~0.01 higher than L/2 + L/2.
6. Number of global steps: the sharpest knob (fewer: seams better, coherence lost; more: coherence above
   1, seams back). 16 of 30 (0.53) is the point where both targets hold at N = 64 and N = 256.
7. Phase law and direction: van der Corput beats golden for this schedule (seam ~0.03 lower, coherence
   ~0.01 higher at both sizes, four seeds); with it, alternating the direction per step is as good or
   slightly better than always left to right (with golden it was the other way round). Golden stays
   better for plain shifted windows.
Seeds 1-4 for the default: worst seam 0.94 / 1.02, lowest coherence 0.93 / 0.94 at N = 64 / 256.
Known cost of the single-pass default: the marginal variance comes out ~35% below the full denoiser's
(the correlation structure is right; cov error 0.36-0.49), and the seam ratio profits from that. The
two-pass keyframes-first mode with clean pins has cov error 0.07 at N = 64 (see the Oracle tables).
"""


def candidates():
    yield "default", DEFAULT
    for links, shift, levels in (("chain", True, False), ("chain", False, False), ("hub", True, False),
                                 ("hub", False, False), ("hub", True, True)):
        yield f"global combs {links}, shift {shift}, levels {levels}", replace(
            DEFAULT, comb_links=links, shift_combs=shift, comb_levels=levels)
    for steps in (0, 10, 12, 14, 15, 17, 18, 20):
        yield f"global steps {steps}", replace(DEFAULT, global_steps=steps)
    for own, previous, anchors in ((16, 8, 8), (16, 12, 4), (16, 16, 0), (12, 8, 12), (8, 8, 16)):
        yield f"local own {own}, previous {previous}, anchors {anchors}", replace(
            DEFAULT, own=own, previous_refs=previous, anchor_refs=anchors, anchor_stride=16 if anchors else 0)
    for stride in (4, 8, 12):
        yield f"anchor stride {stride}", replace(DEFAULT, anchor_stride=stride)
    for law in ("golden", "random"):
        yield f"phase {law}", replace(DEFAULT, phase_law=law)
    yield "no alternation", replace(DEFAULT, alternate=False)
    yield "own 12, anchors 12", replace(DEFAULT, own=12, anchor_refs=12)


def pareto(points):
    """Points not beaten on all of (seam, coherence error, cost at N = 256)."""
    def key(p):
        f = p[2]
        return f.seam, abs(1 - f.coherence), f.cost
    return [p for p in points if not any(all(a <= b for a, b in zip(key(q), key(p))) and key(q) != key(p)
                                         for q in points)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args(argv)
    started = time.time()
    worlds = {}
    for n in (64, 256):
        noise = initial_noise(n, VIDEOS, CHANNELS, 0)
        worlds[n] = noise, run(None, n, False, noise)[0]
    points = []
    for label, recipe in candidates():
        row = []
        for n, (noise, full) in worlds.items():
            result, cost = run(lambda step: build(step, n, CONTEXT, recipe), n, False, noise)
            row.append(figures(result, full, n, CONTEXT, cost))
        points.append((label, row[0], row[1]))
        print(f"{label:45s} N=64: seam {row[0].seam:.3f} coh {row[0].coherence:.3f} cost {row[0].cost:.3f}"
              f" | N=256: seam {row[1].seam:.3f} coh {row[1].coherence:.3f} cov {row[1].cov_error:.3f}"
              f" cost {row[1].cost:.3f}", flush=True)
    front = pareto(points)
    lines = ["| recipe | N=64 seam | coherence | cov error | cost | N=256 seam | coherence | cov error | cost |"
             " Pareto (N=256) |", "| --- " * 10 + "|"]
    for label, a, b in points:
        lines.append(f"| {label} | {a.seam:.3f} | {a.coherence:.3f} | {a.cov_error:.3f} | {a.cost:.3f} | "
                     f"{b.seam:.3f} | {b.coherence:.3f} | {b.cov_error:.3f} | {b.cost:.3f} | "
                     f"{'yes' if any(p[0] == label for p in front) else ''} |")
    changed = {f.name: getattr(DEFAULT, f.name) for f in fields(Recipe)
               if getattr(DEFAULT, f.name) != getattr(Recipe(), f.name)}
    text = (f"`.venv/bin/python benchmarks/search_schedules.py --write` ({time.time() - started:.0f} s): "
            f"recipes around the default {changed}, {VIDEOS} videos, Euler, L = {CONTEXT}. Targets: seam <= "
            "1.10, coherence >= 0.90, cost <= 1.25 (N = 64) / 1.10 (N = 256).\n\n" + "\n".join(lines) +
            "\n\n" + NOTES)
    print(text)
    if args.write:
        results.write_section("Oracle: schedule search", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
