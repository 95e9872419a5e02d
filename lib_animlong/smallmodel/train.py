"""Train the small sprite AnimateDiff in two resumable stages (checkpoints in .train/, loss logs as CSV).

    python -m lib_animlong.smallmodel.train image  --minutes 35     # stage 1: the image UNet on single frames
    python -m lib_animlong.smallmodel.train motion --minutes 45     # stage 2: motion modules, image UNet frozen
    python -m lib_animlong.smallmodel.train export                  # EMA weights -> models/*.safetensors (fp16)
    python -m lib_animlong.smallmodel.train eval                    # held-out clip loss with / without motion

    python -m lib_animlong.smallmodel.train motion --from-shipped --clip 8-32 --lr 1e-4 --minutes 60
                                       # fine-tune the shipped motion modules on clips of 8 to 32 frames

Each invocation resumes from its stage's checkpoint and stops after --minutes or --steps (whichever comes
first). Batches are a pure function of (seed, step), so a resumed run sees the same data as an unbroken one.
"""
import argparse
import copy
import csv
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from . import latent, sprites, text
from .config import alphas_cumprod, build_unet, motion_spec
from .weights import MOTION_FILE, UNET_FILE, save_image_model, save_motion

ROOT = Path(__file__).resolve().parents[2]


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float = 0.999) -> None:
    decay = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - decay)


def noised_rows(clean_latents, generator, timesteps_per_row, min_snr: float) -> dict:
    """The CPU half of the ldm / AnimateDiff eps-prediction objective: noisy inputs, their noise, and the
    per-row loss weight min(SNR, gamma) / SNR (Min-SNR, Hang et al. 2023): the nearly clean steps, easy and
    many, stop dominating the gradient, so the layout and colours decided at high noise are learned sooner."""
    abar = alphas_cumprod()[timesteps_per_row].view(-1, 1, 1, 1)
    noise = torch.randn(clean_latents.shape, generator=generator)
    snr = (abar / (1 - abar)).flatten()
    weight = snr.clamp(max=min_snr) / snr if min_snr > 0 else torch.ones_like(snr)
    return dict(noisy=abar.sqrt() * clean_latents + (1 - abar).sqrt() * noise, noise=noise,
                timesteps=timesteps_per_row, weight=weight)


def diffusion_loss(unet, context, batch: dict):
    device = context.device
    prediction = unet(batch["noisy"].to(device), batch["timesteps"].to(device), context=context)
    error = (prediction - batch["noise"].to(device)).pow(2).mean(dim=(1, 2, 3))
    return (error * batch["weight"].to(device)).mean()


def split(state, prefix):
    """The entries of a ModuleDict state dict under one name, without the prefix."""
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def step_generators(seed: int, step: int):
    return np.random.default_rng([seed, step]), torch.Generator().manual_seed(seed * 1_000_003 + step)


class SpriteBatches(torch.utils.data.Dataset):
    """Training batch number `step` (CPU tensors), a pure function of (seed, step): picklable, so DataLoader
    workers can draw batches ahead of the GPU. `frames` 1 gives single frames (image stage), more gives
    clips of consecutive frames (motion stage); prompts and timesteps are per video."""

    def __init__(self, seed: int, videos: int, frames, min_snr: float, first: int = 0, last: int = 0):
        """frames: an int, or (shortest, longest) to draw each batch's clip length from its step."""
        self.seed, self.videos, self.frames, self.min_snr = seed, videos, frames, min_snr
        self.first, self.last = first, last

    def __len__(self):
        return max(0, self.last - self.first)

    def __getitem__(self, index: int) -> dict:
        return self.at(self.first + index)

    def at(self, step: int) -> dict:
        rng, gen = step_generators(self.seed, step)
        frames = self.frames
        if isinstance(frames, tuple):
            frames = int(rng.integers(frames[0], frames[1] + 1))
        pixels, prompts = sprites.batch(rng, videos=self.videos, frames=frames)
        tokens = text.drop_slots(torch.tensor([text.tokenize(p) for p in prompts]), gen, 0.15, 0.1)
        t = torch.randint(0, len(alphas_cumprod()), (len(prompts),), generator=gen)
        rows = noised_rows(latent.encode(pixels), gen, t.repeat_interleave(frames), self.min_snr)
        return dict(rows, tokens=tokens, frames=frames)

    def range(self, first: int, last: int) -> "SpriteBatches":
        return SpriteBatches(self.seed, self.videos, self.frames, self.min_snr, first, last)


class Stage:
    """What differs between the two stages: trainable modules, batches, and the forward context."""

    def __init__(self, args, frames: int, videos: int):
        self.args = args
        self.batches = SpriteBatches(args.seed, videos, frames, args.min_snr)

    def checkpoint_path(self) -> Path:
        return Path(self.args.dir) / f"{self.name}.pt"

    def loss(self, batch: dict):
        context = self.text(batch["tokens"].to(self.args.device))
        return diffusion_loss(self.unet, context.repeat_interleave(int(batch["frames"]), dim=0), batch)


class ImageStage(Stage):
    name = "image"

    def __init__(self, args):
        super().__init__(args, frames=1, videos=args.batch)
        torch.manual_seed(args.seed)
        self.unet, self.text = build_unet(), text.TextEmbedding()
        self.trainable = torch.nn.ModuleDict(dict(unet=self.unet, text=self.text))

    @contextmanager
    def forward_context(self):
        yield


class MotionStage(Stage):
    name = "motion"

    def __init__(self, args):
        super().__init__(args, frames=clip_lengths(args.clip), videos=args.clips)
        from ..motion.inject import inject_motion
        from ..motion.module import MotionModuleSet
        torch.manual_seed(args.seed)
        self.motion = MotionModuleSet(motion_spec())
        if getattr(args, "from_shipped", False):   # fine-tune: the shipped image model and motion modules
            from .weights import load_image_model, load_motion_model
            self.unet, self.text = load_image_model()
            self.motion.load_state_dict(load_motion_model().state_dict())
        else:
            image = torch.load(Path(args.dir) / "image.pt", weights_only=True, map_location="cpu")
            self.unet, self.text = build_unet(), text.TextEmbedding()
            self.unet.load_state_dict(split(image["ema"], "unet"))
            self.text.load_state_dict(split(image["ema"], "text"))
            for _, module in self.motion.modules_in_order():  # AnimateDiff: the module starts as the identity
                torch.nn.init.zeros_(module.temporal_transformer.proj_out.weight)
                torch.nn.init.zeros_(module.temporal_transformer.proj_out.bias)
        self.unet.requires_grad_(False).eval()
        self.text.requires_grad_(False).eval()
        self.trainable = self.motion
        self.inject = inject_motion
        self._injection = None

    @contextmanager
    def forward_context(self):
        with self.inject(self.unet, self.motion) as injection:
            self._injection = injection
            try:
                yield
            finally:
                self._injection = None

    def loss(self, batch: dict):
        from ..motion.call import MotionCall
        if self._injection is None:      # outside forward_context: the image model alone
            return super().loss(batch)
        with self._injection.slot.use(MotionCall(frames=int(batch["frames"]))):
            return super().loss(batch)


def clip_lengths(value: str):
    """--clip: "16" (every clip 16 frames) or "8-32" (each batch's length drawn from its step)."""
    low, _, high = str(value).partition("-")
    low, high = int(low), int(high or low)
    if not 1 <= low <= high:
        raise SystemExit(f"--clip {value!r}: give a length like 16 or a range like 8-32.")
    return low if low == high else (low, high)


def batches_from(stage: Stage, step: int):
    """Batches step, step + 1, ... up to --steps; drawn by --workers processes ahead of the model if > 0."""
    batches = stage.batches.range(step, stage.args.steps)
    if stage.args.workers <= 0:
        return (batches[i] for i in range(len(batches)))
    return iter(torch.utils.data.DataLoader(batches, batch_size=None, num_workers=stage.args.workers,
                                            prefetch_factor=4, pin_memory=stage.args.device.startswith("cuda")))


def train(stage: Stage) -> None:
    args = stage.args
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    stage.unet.to(args.device)
    stage.text.to(args.device)
    stage.trainable.to(args.device)
    optimizer = torch.optim.AdamW(stage.trainable.parameters(), lr=args.lr, weight_decay=0.01)
    ema = copy.deepcopy(stage.trainable).requires_grad_(False)
    step, spent = 0, 0.0
    path = stage.checkpoint_path()
    if path.exists():
        state = torch.load(path, weights_only=True, map_location=args.device)
        stage.trainable.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        step, spent = state["step"], state["seconds"]
        print(f"resumed {stage.name} at step {step} ({spent / 60:.1f} min trained)", flush=True)
    log_path = Path(args.dir) / f"{stage.name}_log.csv"
    new_log = not log_path.exists()
    log = open(log_path, "a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "loss", "minutes"])

    def save():
        torch.save(dict(model=stage.trainable.state_dict(), ema=ema.state_dict(), optimizer=optimizer.state_dict(),
                        step=step, seconds=spent, args=vars(args)), str(path) + ".tmp")
        Path(str(path) + ".tmp").replace(path)
        log.flush()

    begun = started = last_save = time.time()
    recent = []
    stage.trainable.train()
    with stage.forward_context():
        for batch in batches_from(stage, step):
            if time.time() - begun >= args.minutes * 60:
                break
            for group in optimizer.param_groups:
                group["lr"] = args.lr * min(1.0, (step + 1) / args.warmup)
            loss = stage.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(stage.trainable.parameters(), 1.0)
            optimizer.step()
            ema_update(ema, stage.trainable, step)
            step += 1
            recent.append(loss.item())
            if step % args.log_every == 0:
                spent_now = spent + time.time() - started
                writer.writerow([step, f"{np.mean(recent):.5f}", f"{spent_now / 60:.2f}"])
                print(f"{stage.name} step {step} loss {np.mean(recent):.4f} ({spent_now / 60:.1f} min)", flush=True)
                recent = []
            if time.time() - last_save > args.save_minutes * 60:
                spent, started, last_save = spent + time.time() - started, time.time(), time.time()
                save()
    spent += time.time() - started
    save()
    log.close()
    print(f"saved {path} at step {step}", flush=True)


def export(args) -> None:
    image = torch.load(Path(args.dir) / "image.pt", weights_only=True, map_location="cpu")
    save_image_model(UNET_FILE, split(image["ema"], "unet"), split(image["ema"], "text"))
    print(f"wrote {UNET_FILE} (image step {image['step']})")
    motion_path = Path(args.dir) / "motion.pt"
    if motion_path.exists():
        motion = torch.load(motion_path, weights_only=True, map_location="cpu")
        save_motion(MOTION_FILE, motion["ema"])
        print(f"wrote {MOTION_FILE} (motion step {motion['step']})")


def evaluate(args) -> None:
    """Clip loss of the frozen image model alone and with the trained motion modules, on the same held-out
    batches (steps far beyond training): what the motion modules add."""
    stage = MotionStage(args)
    trained = Path(args.dir) / "motion.pt"
    if trained.exists():
        stage.motion.load_state_dict(torch.load(trained, weights_only=True, map_location="cpu")["ema"])
    else:
        print(f"{trained} not found: evaluating the shipped motion modules")
    stage.motion.eval()
    stage.unet.to(args.device)
    stage.text.to(args.device)
    stage.motion.to(args.device)
    held_out = [stage.batches.at(step) for step in range(10_000_000, 10_000_000 + args.eval_batches)]
    with torch.no_grad():
        alone = np.mean([stage.loss(batch).item() for batch in held_out])
        with stage.forward_context():
            together = np.mean([stage.loss(batch).item() for batch in held_out])
    print(f"held-out loss over {args.eval_batches} batches of {args.clips} clips of {args.clip} frames: "
          f"image model alone {alone:.5f}, "
          f"with motion modules {together:.5f} ({100 * (1 - together / alone):.1f}% lower)")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lib_animlong.smallmodel.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("image", "motion", "export", "eval"))
    parser.add_argument("--dir", default=str(ROOT / ".train"), help="checkpoints and loss logs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=35.0, help="wall-clock budget of this invocation")
    parser.add_argument("--steps", type=int, default=100_000, help="stop at this total step count")
    parser.add_argument("--batch", type=int, default=32, help="frames per image-stage batch")
    parser.add_argument("--clips", type=int, default=2, help="clips per motion-stage batch")
    parser.add_argument("--clip", default="16",
                        help="frames per clip (motion stage): a length (16) or a range drawn per batch (8-32)")
    parser.add_argument("--from-shipped", action="store_true",
                        help="motion stage / eval: start from models/ (the shipped image model and motion "
                             "modules) instead of .train/image.pt and zero-initialised modules")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--min-snr", type=float, default=5.0, help="Min-SNR loss weighting gamma (0: off)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads; 1 is faster than 2 when other jobs share the 2 cores")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda when a GPU is lent")
    parser.add_argument("--workers", type=int, default=0,
                        help="processes drawing batches ahead of the model (use on a GPU; 0 draws in-line)")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--save-minutes", type=float, default=3.0)
    parser.add_argument("--eval-batches", type=int, default=24, help="held-out batches for `eval`")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import ldm.modules.attention
    ldm.modules.attention.XFORMERS_IS_AVAILBLE = False
    if args.stage == "export":
        return export(args)
    if args.stage == "eval":
        return evaluate(args)
    train(ImageStage(args) if args.stage == "image" else MotionStage(args))


if __name__ == "__main__":
    main()
