"""fp16 figures on a GPU: a full-size SD1.5 UNet (random weights) with full-size v2 motion modules at 512 px.

    python benchmarks/bench_gpu.py [--frames 16 64 256] [--steps 10]

Needs CUDA (run it on a lent GPU machine; CI never runs it). For each frame count and each schedule (the
default schedule, named from AnimationOptions, vs the peers' overlap-4 pyramid), one fp16 sampling pass of
`--steps` Euler steps with classifier-free guidance rows ([cond | uncond], as the webui batches them) through the real windowed
denoiser: seconds per step (mean over every step of the pass, so global and local steps count as often as a
user meets them) and peak VRAM above the weights. Cross-attention runs through torch SDPA (what the webui's
"sdp" optimisation does); the temporal attention through the engine's own SDPA path. Also checks, on this
GPU in fp16: one window over all frames gives the plain call's output bit for bit, and the SDPA and plain
temporal attention paths agree. Writes the "GPU (fp16, SDPA)" section of benchmarks/RESULTS.md.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))  # tests/unets.py: the SD1.5 configuration, LatentModel

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lib_animlong import kdiffusion  # noqa: E402
from lib_animlong.motion.call import MotionCall  # noqa: E402
from lib_animlong.options import AnimationOptions  # noqa: E402
from lib_animlong.sampling import WindowedDenoiser  # noqa: E402

import results  # noqa: E402

SCHEDULES = ((f"default ({AnimationOptions().schedule})", {}),   # named from the options: what actually runs
             ("peer: overlap 4, pyramid", dict(schedule="overlap", overlap=4, fuse_weights="pyramid",
                                               references="none")))
TOKENS = 77


def sdpa_cross_attention(self, x, context=None, mask=None):
    """ldm CrossAttention.forward through torch SDPA (the webui's 'sdp' cross-attention optimisation)."""
    h = self.heads
    context = x if context is None else context
    q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
    q, k, v = (t.unflatten(-1, (h, -1)).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)
    return self.to_out(out.transpose(1, 2).flatten(2))


def build(device):
    import ldm.modules.attention as ldm_attention
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    from lib_animlong.motion.inject import inject_motion
    from lib_animlong.motion.module import MotionModuleSet
    from lib_animlong.motion.synthetic import randomize_, sd15_spec
    from unets import SD15, LatentModel

    ldm_attention.XFORMERS_IS_AVAILBLE = False
    ldm_attention.CrossAttention.forward = sdpa_cross_attention
    torch.manual_seed(0)
    unet = UNetModel(**dict(SD15, image_size=64)).eval()
    for p in unet.parameters():  # ldm zero-initialises output convs: make every layer matter
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.02)
    unet = unet.half().to(device)
    motion = randomize_(MotionModuleSet(sd15_spec("v2", 320)), seed=1).eval()
    _, external = kdiffusion.load()
    model = external.CompVisDenoiser(LatentModel(unet).to(device))
    return model, unet, motion, inject_motion


def sample_pass(model, injected, frames: int, steps: int, options: AnimationOptions, device) -> dict:
    """One Euler pass over 2 x frames rows (cond | uncond); per-step seconds and peak VRAM above the start."""
    sampling, _ = kdiffusion.load()
    sigmas = sampling.get_sigmas_karras(steps, 0.03, 14.6, rho=7.0).to(device)
    generator = torch.Generator(device).manual_seed(0)
    x = torch.randn((2 * frames, 4, 64, 64), generator=generator, device=device) * sigmas[0]
    cond = {"c_crossattn": [torch.randn((2 * frames, TOKENS, 768), generator=generator, device=device)]}
    denoiser = WindowedDenoiser(model, injected.slot, options, sigmas=sigmas)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    seconds = []
    for step in range(steps):
        start = time.perf_counter()
        denoised = denoiser(x, sigmas[step] * torch.ones(2 * frames, device=device), cond=cond, step=step)
        x = x + (x - denoised) / sigmas[step] * (sigmas[step + 1] - sigmas[step])
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    finite = bool(torch.isfinite(x).all())
    return dict(seconds=sum(seconds) / steps, peak_gib=(torch.cuda.max_memory_allocated() - base) / 2 ** 30,
                finite=finite)


def checks(model, unet, injected, motion, device) -> str:
    """fp16 on this GPU: one window == the plain call (bit for bit); SDPA vs plain temporal attention."""
    from lib_animlong.motion.attention import plain_attention, sdpa_attention

    frames = 16
    generator = torch.Generator(device).manual_seed(1)
    x = torch.randn((2 * frames, 4, 64, 64), generator=generator, device=device)
    sigma = torch.full((2 * frames,), 2.0, device=device)
    cond = {"c_crossattn": [torch.randn((2 * frames, TOKENS, 768), generator=generator, device=device)]}
    denoiser = WindowedDenoiser(model, injected.slot, AnimationOptions(frames=frames), total_steps=10)
    with injected.slot.use(MotionCall(frames=frames)):
        plain = model(x, sigma, cond=cond)
    windowed = denoiser(x, sigma, cond=cond, step=5)
    injected.motion.set_attention(plain_attention)   # the copy running in the UNet, not the CPU original
    with injected.slot.use(MotionCall(frames=frames)):
        plain_math = model(x, sigma, cond=cond)
    injected.motion.set_attention(sdpa_attention)
    unet.float()  # the fp32 reference (the injected motion modules are part of the UNet's tree now)
    with torch.autocast("cuda", enabled=False), injected.slot.use(MotionCall(frames=frames)):
        reference = model(x, sigma, cond=cond).float()
    unet.half()

    def error(y):
        return ((y.float() - reference).norm() / reference.norm()).item()

    return (f"Checks on this GPU, 16 frames: one window over all frames equals the plain batch call bit for bit "
            f"in fp16: {torch.equal(plain, windowed)}. Relative L2 error of the fp16 UNet output against fp32: "
            f"temporal attention through SDPA {error(plain):.1e}, through plain math {error(plain_math):.1e}.")

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu needs a CUDA GPU; run it on a lent GPU machine.")
        return 1
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    model, unet, motion, inject = build(device)
    lines = ["| frames | schedule | s / step | s / frame / step | peak VRAM above weights (GiB) |",
             "| --- | --- | --- | --- | --- |"]
    with inject(unet, motion) as injected, torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        weights_gib = torch.cuda.memory_allocated() / 2 ** 30  # the UNet and the injected motion modules
        sample_pass(model, injected, 16, 2, AnimationOptions(frames=16), device)  # warm-up: cuDNN, allocator
        check_line = checks(model, unet, injected, motion, device)
        print(check_line, flush=True)
        for frames in args.frames:
            for name, knobs in SCHEDULES:
                options = AnimationOptions(frames=frames, **knobs)
                # an untimed pass first: each new call shape loads its kernels and grows the allocator once
                sample_pass(model, injected, frames, args.steps, options, device)
                figures = sample_pass(model, injected, frames, args.steps, options, device)
                if not figures["finite"]:
                    print(f"warning: non-finite latents at {frames} frames, {name}")
                line = (f"| {frames} | {name} | {figures['seconds']:.2f} | {figures['seconds'] / frames * 1000:.1f} ms "
                        f"| {figures['peak_gib']:.2f} |")
                lines.append(line)
                print(line, flush=True)
    table = "\n".join(lines)
    header = (f"`python benchmarks/bench_gpu.py` on {torch.cuda.get_device_name()} (torch {torch.__version__}). "
              f"Full-size SD1.5 UNet (random weights, fp16, {weights_gib:.2f} GiB with the v2 motion modules) at "
              f"512 px (64x64 latents), cond + uncond rows, context length 16, one {args.steps}-step Euler pass "
              "per row (mean over all its steps, after one untimed pass of the same row). Cross-attention "
              "through torch SDPA; temporal attention through the engine's SDPA path. xformers is not installed "
              "on the lent machine, so its path is not measured.")
    if not args.no_write:
        results.write_section("GPU (fp16, SDPA)", header + "\n\n" + table + "\n\n" + check_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
