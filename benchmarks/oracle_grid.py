"""The oracle (../shared/docs/oracle.md) on a broad grid of settings: every schedule's seam, coherence,
variance ratio, covariance error and cost, at N from 48 to 1024, context lengths 8-32, 4-50 steps, Euler,
Euler ancestral and DPM++ 2M, and worlds of weaker and stronger long-range correlation; also the variance,
coherence and covariance error against the prior itself, and a row for the full denoiser against it.

Rows marked (a)-(d) are issue 11's ideas: option combinations, the engine's spectral_steps, and two-branch
prototypes that exist only here (`spectral`, `smooth_references`: both branches are counted in the cost).

    .venv/bin/python benchmarks/oracle_grid.py [--videos 64] [--settings 0,3] [--update]

Not the full product of those ranges (that is hours on one core): the SETTINGS below each change a few of
them at once so that every value of every range appears in some row. Each finished (setting, schedule)
is cached in out/oracle_grid.json (a stopped run resumes). The table goes to RESULTS.md with `--update`.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from lib_animlong.context import plan  # noqa: E402
from lib_animlong.options import AnimationOptions  # noqa: E402

from oracle_run import initial_noise, run, run_branched, run_keyframes_first, sigmas  # noqa: E402
from oracle_world import (CHANNELS, SHARED, TIME_SCALE, covariance, covariance_figures,  # noqa: E402
                          figures, frame_covariance)
import results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "out" / "oracle_grid.json"
SECTION = "Oracle: broad grid"
PRIOR = "full-sequence denoiser, against the prior"   # the reference's own distance from the prior

# (N, context length, steps, sampler, world): world changes a (shared) or l (time_scale) of the prior
SETTINGS = [
    (48, 8, 30, "euler", {}),
    (64, 16, 30, "euler", {}),
    (64, 16, 4, "euler", {}),
    (64, 16, 8, "euler_a", {}),
    (96, 8, 20, "dpmpp_2m", {}),
    (128, 32, 30, "euler", {}),
    (128, 16, 6, "euler", {"time_scale": 12.0}),
    (256, 16, 30, "euler", {}),
    (256, 16, 12, "dpmpp_2m", {"shared": 0.8}),
    (256, 16, 30, "euler", {"shared": 0.2}),
    (64, 8, 50, "dpmpp_2m", {"shared": 0.8}),
    (512, 32, 20, "euler_a", {}),
    (1024, 16, 8, "euler", {}),
]


ANCHORED = dict(schedule="anchored-shift", global_steps=0.53, references="previous+anchors")


def low_pass(x: torch.Tensor, n: int, scale: float) -> torch.Tensor:
    """Gaussian low-pass along the frame axis of (videos x frames, C, 1, 1): each frame becomes the
    Gaussian-weighted mean (standard deviation `scale` frames) of the frames of its video, the weights
    renormalised at the video's ends (no wrap round, no padding)."""
    i = torch.arange(n, dtype=torch.float64)
    kernel = torch.exp(-(i[:, None] - i[None, :]) ** 2 / (2 * scale ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    videos = x.reshape(-1, n, x.shape[1])
    return torch.einsum("fg,vgc->vfc", kernel.to(x.dtype), videos).reshape(x.shape)


def spectral(global_changes: dict, local_changes: dict, fraction: float, scale_of_context: float):
    """FreeLong-style blending at window level (prototype): for the noisiest `fraction` of the steps both
    branches run, and the estimate is the global branch's low temporal frequencies plus the local branch's
    high ones (Gaussian low-pass of `scale_of_context` x the context length); after that only the local
    branch runs."""
    def runner(n, context, steps, sampler, world, noise):
        wide = AnimationOptions(frames=n, context_length=context).replace(**global_changes)
        local = AnimationOptions(frames=n, context_length=context).replace(**local_changes)
        scale = scale_of_context * context
        mixed = round(fraction * steps)

        def fuse_at(step):
            if step >= mixed:
                return None
            return lambda g, l, sigma: low_pass(g, n, scale) + l - low_pass(l, n, scale)
        return run_branched(lambda step: plan(step, steps, n, wide), lambda step: plan(step, steps, n, local),
                            fuse_at, n, noise, steps=steps, sampler=sampler, world=world)
    return runner


def smooth_references(with_changes: dict, without_changes: dict, centre_fraction: float, width: float):
    """Reference strength as a smooth function of sigma (prototype): the estimate is w(sigma) x the one
    with references + (1 - w(sigma)) x the one without, w = logistic in log sigma, 1/2 at the sigma of step
    round(centre_fraction x steps), `width` the logistic's scale in log sigma. Where w < 0.01 only the
    branch without references runs, where w > 0.99 only the one with them; between, both (both counted)."""
    def runner(n, context, steps, sampler, world, noise):
        refs = AnimationOptions(frames=n, context_length=context).replace(**with_changes)
        plain = AnimationOptions(frames=n, context_length=context).replace(**without_changes)
        ladder = sigmas(steps)
        centre = float(ladder[min(round(centre_fraction * steps), steps - 1)].log())

        def weight(step):
            return float(torch.sigmoid((ladder[step].log() - centre) / width))

        def fuse_at(step):
            w = weight(step)
            if w < 0.01:
                return None
            return "global" if w > 0.99 else (lambda a, b, sigma: w * a + (1 - w) * b)
        return run_branched(lambda step: plan(step, steps, n, refs), lambda step: plan(step, steps, n, plain),
                            fuse_at, n, noise, steps=steps, sampler=sampler, world=world)
    return runner


def keyframes(changes: dict):
    def runner(n, context, steps, sampler, world, noise):
        options = AnimationOptions(frames=n, context_length=context).replace(
            keyframes_first=True, pin_mode="clean", **changes)
        return run_keyframes_first(options, n, False, noise, steps=steps, sampler=sampler, world=world)
    return runner


def schedules(context: int):
    overlap = max(1, context // 4)
    return [
        (PRIOR, "prior"),
        ("anchored-shift (before: default)", dict(schedule="anchored-shift", global_steps=0.53,
                                                  references="previous+anchors")),
        ("anchored-shift, no global steps", dict(schedule="anchored-shift", global_steps=0.0,
                                                 references="previous+anchors")),
        (f"overlap {overlap}, pyramid", dict(schedule="overlap", overlap=overlap, references="none")),
        (f"overlap {overlap}, pyramid + previous", dict(schedule="overlap", overlap=overlap,
                                                        references="previous")),
        (f"uniform {overlap}, van der Corput, pyramid", dict(schedule="uniform", overlap=overlap,
                                                             references="none")),
        ("shifted, golden + previous", dict(schedule="shifted", phase_law="golden", references="previous")),
        ("freenoise, stride 4, pyramid", dict(schedule="freenoise", references="none")),
        ("dilated 1/2/4", dict(schedule="dilated", references="none")),
    ] + ideas(context)


def ideas(context: int):
    """Issue 11's ideas, each a row (see RESULTS.md's reading of the grid for what they measured)."""
    overlap = max(1, context // 4)
    uniform = dict(schedule="uniform", overlap=overlap, references="none")
    previous = dict(uniform, references="previous")
    hub = dict(ANCHORED, global_steps=1.0)    # hub comb + combs narrowing to every 2nd frame, every step
    return [
        (f"(a) uniform {overlap} + previous", previous),
        (f"(a) uniform {overlap} + previous, {overlap} reference frames", dict(previous, reference_budget=overlap)),
        (f"(b) keyframes first, clean pins, uniform {overlap} body (two passes)", keyframes(uniform)),
        (f"(b) keyframes first, clean pins, uniform {overlap} + previous body (two passes)", keyframes(previous)),
        ("(b) keyframes first, clean pins, shifted golden body (two passes)",
         keyframes(dict(schedule="shifted", phase_law="golden", references="none"))),
        (f"(c) spectral hub (engine: spectral_steps 1) + uniform {overlap}", dict(uniform, spectral_steps=1.0)),
        (f"(c) spectral hub (engine: spectral_steps 1) + uniform {overlap} + previous",
         dict(previous, spectral_steps=1.0)),
        (f"(c) spectral hub (engine: spectral_steps 1) + overlap {overlap} + previous",
         dict(previous, schedule="overlap", spectral_steps=1.0)),
        ("(c) spectral hub (engine: spectral_steps 1) + shifted golden + previous",
         dict(schedule="shifted", phase_law="golden", references="previous", spectral_steps=1.0)),
        (f"(c) spectral hub (engine: spectral_steps 0.53) + uniform {overlap} + previous",
         dict(previous, spectral_steps=0.53)),
        (f"(c) prototype: anchored-shift global + uniform {overlap}, first 53% of steps, low-pass L/2",
         spectral(ANCHORED, uniform, 0.53, 0.5)),
        (f"(c) prototype: hub combs + uniform {overlap}, every step, low-pass L/2", spectral(hub, uniform, 1.0, 0.5)),
        (f"(c) prototype: hub combs + uniform {overlap} + previous, every step, low-pass L/2",
         spectral(hub, previous, 1.0, 0.5)),
        (f"(c) prototype: hub combs + uniform {overlap}, every step, low-pass 2L",
         spectral(hub, uniform, 1.0, 2.0)),
        (f"(d) smooth references: uniform {overlap} with / without previous+anchors, w(sigma)",
         smooth_references(dict(uniform, references="previous+anchors"), uniform, 0.53, 0.5)),
        (f"(d) smooth global strength: hub combs / uniform {overlap}, w(sigma)",
         smooth_references(hub, uniform, 0.53, 0.5)),
        (f"(d) smooth global strength: hub combs / uniform {overlap} + previous, w(sigma)",
         smooth_references(hub, previous, 0.53, 0.5)),
    ]


def setting_name(setting) -> str:
    n, context, steps, sampler, world = setting
    w = ", ".join(f"{'a' if k == 'shared' else 'l'} = {v:g}" for k, v in world.items()) or \
        f"a = {SHARED:g}, l = {TIME_SCALE:g}"
    return f"N {n}, L {context}, {steps} steps, {sampler}, {w}"


READING = """How to read it. Every figure but the last three columns is relative to the full-sequence denoiser
run with the same sampler, steps and noise (the issue's goal). The first row of each setting compares that
reference with the prior itself, and it is not the prior: it keeps 42-88% of the prior's variance and its
far correlation is 0.59-1.26 of the prior's. Two causes: k-diffusion starts from sigma_max x noise
(14.6), which holds less variance than the prior along its shared direction once a x N nears sigma_max^2
= 213 (N >= ~256 here: the full run keeps 47% of the prior's variance at N = 1024), and 4-8 step samplers
are coarse. So at N >= 256 a schedule can sit above 1 in variance or coherence and still be closer to the
prior than the reference is; the "/ prior" columns say which. Two full runs from different noise differ by
a cov error of 0.06-0.11 (N 64-1024): differences below ~0.1 there are sampling noise.

What was measured (ranges over the settings; L 16 rows unless named):
- The default (uniform 4, no references) keeps its place as a peer-class schedule: seam 1.41-3.57,
  coherence ~0, variance 0.71-1.14, cov error 0.61-0.92, cost 1.34-1.45. anchored-shift (the default
  before) keeps the seams (0.88-1.67) and coherence (0.73-1.39) but 45-73% of the variance, and strobes
  on learned motion (next section).
- (a) uniform + previous references (issue 11 idea a): at every one of the 13 settings a lower seam than
  uniform alone (1.11-2.57 against 1.18-5.13, 6-55% lower), more variance at 12 of them, same cost,
  no coherence (<= 0.08). Options only, nothing in the engine. A budget of L/4 reference frames helps less.
- (b) keyframes first with clean pins and a local body (no combs after the first pass): coherence comes
  back from the clean keyframes alone, 0.88-1.13 at N <= 128 and 0.93-1.12 of the prior's at every N,
  with cov error 0.03-0.36 at N <= 128 (0.03-0.23 with Euler and DPM++ 2M; 0.36 at 8 Euler ancestral
  steps, where it keeps 70% of the variance). Uniform body: seam 0.95-1.52, cost 1.35-1.59 with both
  passes counted; shifted body: cost 1.02-1.25 but seams up to 2.07. At N >= 256 its coherence is
  0.98-1.59 of the full run's. Its first pass samples the keyframes as if they were consecutive frames (a
  comb), which a learned motion module may turn into slow motion or strobing: only learned_motion.py can
  say. Options only (keyframes_first is headless-only).
- (c) spectral blending (FreeLong) kept in the engine as `spectral_steps` (off by default): at each of the
  first spectral_steps x steps, one hub window of L frames spread over the video is computed first, and
  after the fusion the result's temporal frequencies slower than the hub's spacing (Gaussian, standard
  deviation N / L frames) become the hub's; the windows keep the faster ones. It is the only row that
  meets the cov error goal on most of the grid: with spectral_steps 1 and uniform/overlap + previous,
  at the 8 settings with N <= 128 cov error 0.04-0.23, variance 0.78-1.18, coherence 0.99-1.19, seam
  0.85-1.44 at context 16-32 and 1.27-2.48 at context 8, cost 1.42-1.70 (the hub adds L / N per
  step); at N >= 256 variance 0.92-1.94 and cov error up to 1.32 of the full run's, but 0.76-1.00
  of the prior's variance: there it restores what the reference itself loses. Against
  the prior, its cov error (uniform + previous: 0.03-0.57) is below the full denoiser's own (0.14-0.72)
  at 11 of the 13 settings (equal within 0.01 at 4 Euler steps, above at 8 Euler ancestral steps: 0.35
  against 0.19); keyframes first is below it at 10; anchored-shift and uniform never (0.48-0.80,
  0.67-0.98). With a shifted golden + previous body the cost is 1.02-1.09 at N >= 256 (1.12-1.39
  below), seams 0.92-1.59.
  Only on the noisiest 53% of the steps it keeps less (variance 0.59-1.44, cov error 0.08-0.50): the hub
  must act at every step. One hub window matters: two hub windows of L frames each (a prototype) lost the
  coherence (0.03-0.52 on 4 settings), since each invents its own slow component.
  The prototype closer to FreeLong's own recipe (a whole second branch, anchored-shift's hub and combs,
  low-passed at L/2 and fused with uniform windows, rows "(c) prototype") costs 1.84-2.45 and keeps
  anchored-shift's loss of variance (0.52-0.87: the combs' shrunken estimates are what it keeps); with a
  2L low-pass the variance comes back but the coherence goes (0.57-0.86). Not kept in the engine.
- (d) reference strength as a smooth function of sigma (prototype only: the estimate is w(sigma) x the
  one with references + (1 - w) x the one without, w logistic in log sigma around the step at 53%): with
  uniform windows and previous+anchors references it gives no coherence (0.05-0.48) at cost 2.3-2.7; as a
  smooth switch between hub combs and uniform windows it keeps anchored-shift's coherence (0.77-1.73) and
  loses even more variance (0.38-0.68) at cost 1.8-2.1. Not kept in the engine. A w(sigma) on the
  spectral hub's correction (prototype, 4 settings) was also worse than full strength at every step
  (variance 0.68-0.85 against 0.93-1.20).

No row meets the whole goal: the spectral hub rows come closest (variance >= 0.90 and cov error <= 0.25
at every N <= 128 setting but the 8-step Euler ancestral one, coherence 1.0-1.2), but their seam at
context 8 (1.27-2.48) and their cost (1.34-1.70 with uniform or overlapping windows) miss it, and at
N >= 256 they overshoot the full run's variance while staying under the prior's. The figures come from
one run of `oracle_grid.py --fresh` (538 s; seed 0, 64 videos per setting at every N including 1024,
one core of a shared 2-core machine)."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--settings", default="", help="comma-separated setting numbers (default: all)")
    parser.add_argument("--update", action="store_true", help="write the table into RESULTS.md")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache")
    parser.add_argument("--table-only", action="store_true", help="only the table of what the cache holds")
    args = parser.parse_args(argv)
    done = {} if args.fresh or not CACHE.exists() else json.loads(CACHE.read_text())
    chosen = [] if args.table_only else [SETTINGS[int(i)] for i in args.settings.split(",") if i] or SETTINGS
    started = time.time()
    for setting in chosen:
        n, context, steps, sampler, world = setting
        noise = initial_noise(n, args.videos, CHANNELS, 0)
        full = None
        for label, changes in schedules(context):
            key = f"{setting_name(setting)} | {label} | {args.videos} videos"
            if key in done:
                continue
            if full is None:
                full, _ = run(None, n, False, noise, steps=steps, sampler=sampler, world=world)
            began = time.time()
            if changes == "prior":
                cost = 1.0
                f = covariance_figures(frame_covariance(full, n), covariance(n, **world), context, cost)
            elif callable(changes):
                result, cost = changes(n, context, steps, sampler, world, noise)
            else:
                options = AnimationOptions(frames=n, context_length=context).replace(**changes)
                result, cost = run(lambda step: plan(step, steps, n, options), n, False, noise, steps=steps,
                                   sampler=sampler, world=world)
            if changes != "prior":
                f = figures(result, full, n, context, cost)
            p = covariance_figures(frame_covariance(full if changes == "prior" else result, n),
                                   covariance(n, **world), context, cost)
            done[key] = dict(setting=setting_name(setting), label=label, seam=f.seam, coherence=f.coherence,
                             variance=f.variance, cov_error=f.cov_error, cost=f.cost, seconds=time.time() - began,
                             variance_prior=p.variance, coherence_prior=p.coherence, cov_error_prior=p.cov_error)
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            CACHE.write_text(json.dumps(done, indent=1))
            print(f"{key}: seam {f.seam:.3f} coherence {f.coherence:.3f} variance {f.variance:.3f} "
                  f"cov error {f.cov_error:.3f} cost {f.cost:.3f}", flush=True)
    table = markdown(done, args.videos)
    print(table)
    print(f"{time.time() - started:.0f} s")
    if args.update:
        results.write_section(SECTION, table + "\n\n" + READING)
    return 0


def ranges(done, videos) -> str:
    """Each schedule's range of every figure over the settings it was run on."""
    by_label = {}
    for setting in SETTINGS:
        for label, _ in schedules(setting[1]):
            v = done.get(f"{setting_name(setting)} | {label} | {videos} videos")
            if v:
                by_label.setdefault(label, []).append(v)
    lines = ["| schedule | settings | seam | coherence | variance | cov error | cost | variance / prior | "
             "coherence / prior | cov error / prior |", "| --- " * 10 + "|"]
    for label, rows in by_label.items():
        cells = " | ".join(f"{min(r[k] for r in rows):.2f} to {max(r[k] for r in rows):.2f}"
                           for k in ("seam", "coherence", "variance", "cov_error", "cost", "variance_prior",
                                     "coherence_prior", "cov_error_prior"))
        lines.append(f"| {label} | {len(rows)} | {cells} |")
    return "\n".join(lines)


def markdown(done, videos) -> str:
    lines = [f"Ranges over the settings run (goal: seam <= 1.10, coherence 0.9-1.1, variance >= 0.90, cov "
             "error <= 0.25, cost <= 1.10):", "", ranges(done, videos), "", "Every setting:", "",
             "| setting | schedule | seam | coherence | variance | cov error | cost | variance / prior | "
             "coherence / prior | cov error / prior |", "| --- " * 10 + "|"]
    for setting in SETTINGS:
        for label, _ in schedules(setting[1]):
            v = done.get(f"{setting_name(setting)} | {label} | {videos} videos")
            if v:
                lines.append(f"| {v['setting']} | {label} | {v['seam']:.3f} | {v['coherence']:.3f} | "
                             f"{v['variance']:.3f} | {v['cov_error']:.3f} | {v['cost']:.3f} | "
                             f"{v['variance_prior']:.3f} | {v['coherence_prior']:.3f} | "
                             f"{v['cov_error_prior']:.3f} |")
    return "\n".join(lines) + (
        f"\n\n{videos} videos x {CHANNELS} channels per setting, seed 0, Karras sigmas (14.6 to 0.03, rho 7); "
        "every figure relative to the full-sequence denoiser with the same sampler, steps and noise; "
        "variance: mean marginal variance over the full denoiser's (1 = as sharp); '/ prior': the same "
        "figures against the prior's own covariance instead of the full run's. The default schedule "
        "(uniform, overlap 4, pyramid, no references) is the uniform row at L 16. "
        "`.venv/bin/python benchmarks/oracle_grid.py` (one core).")


if __name__ == "__main__":
    sys.exit(main())
