"""FreeInit (lib_animlong/freeinit.py, Wu et al. 2023) in the oracle world (../shared/docs/oracle.md): seam,
coherence, variance, covariance error and cost of the default schedule with freeinit_iterations 0, 1, 2,
and of the full-sequence denoiser with FreeInit, all relative to the full-sequence denoiser without it.

    .venv/bin/python benchmarks/oracle_freeinit.py [--videos 256] [--n 64,256] [--filter butterworth]

The oracle's latents are (videos x N, channels, 1, 1): FreeInit's filter is temporal only there (one latent
pixel). Prints one markdown table per N; writes nothing.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib_animlong.context import plan  # noqa: E402
from lib_animlong.options import AnimationOptions  # noqa: E402

from oracle_run import STEPS, initial_noise, run  # noqa: E402
from oracle_world import CHANNELS, figures  # noqa: E402

CONTEXT, SEED = 16, 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=256)
    parser.add_argument("--n", default="64,256")
    parser.add_argument("--filter", default="butterworth")
    parser.add_argument("--d-s", type=float, default=0.25)
    parser.add_argument("--d-t", type=float, default=0.25)
    parser.add_argument("--renoise", choices=("initial", "fresh"), default="initial",
                        help="re-noise the low band with the first run's noise (the paper's code) or new noise")
    args = parser.parse_args(argv)
    for n in (int(v) for v in args.n.split(",")):
        started = time.time()
        noise = initial_noise(n, args.videos, CHANNELS, SEED)
        full, _ = run(None, n, False, noise, seed=SEED)
        rows = []
        for iterations in (0, 1, 2):
            options = AnimationOptions(frames=n, context_length=CONTEXT, freeinit_iterations=iterations,
                                       freeinit_filter=args.filter, freeinit_d_s=args.d_s, freeinit_d_t=args.d_t,
                                       freeinit_renoise=args.renoise)
            result, cost = run(lambda step: plan(step, STEPS, n, options), n, False, noise, seed=SEED,
                               freeinit=options)
            rows.append((f"default (uniform), freeinit_iterations {iterations}", figures(result, full, n, CONTEXT,
                                                                                        cost)))
            if iterations:
                result, cost = run(None, n, False, noise, seed=SEED, freeinit=options)
                rows.append((f"full-sequence denoiser, freeinit_iterations {iterations}",
                              figures(result, full, n, CONTEXT, cost)))
        print(f"### N = {n}, L = {CONTEXT}, Euler {STEPS} steps, {args.videos} videos, FreeInit {args.filter} "
              f"d_s {args.d_s} d_t {args.d_t}, re-noised with {args.renoise} noise ({time.time() - started:.0f} s)\n")
        print("| run | seam | coherence | variance | cov error | cost |\n| --- | --- | --- | --- | --- | --- |")
        for label, f in rows:
            print(f"| {label} | {f.seam:.3f} | {f.coherence:.3f} | {f.variance:.3f} | {f.cov_error:.3f} "
                  f"| {f.cost:.3f} |")
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
