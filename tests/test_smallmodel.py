"""The small sprite model: its data, its "VAE", its vocabulary, its training script and shipped weights."""
import numpy as np
import pytest
import torch

from lib_animlong.errors import AnimLongError
from lib_animlong.smallmodel import latent, sprites, text
from lib_animlong.smallmodel.sprites import COLOURS, SIZE, SpriteVideo


def video(**changes):
    base = dict(shape="circle", colour="red", background="black", radius=5.0, start=(16.0, 16.0),
                velocity=(1.0, 0.5))
    return SpriteVideo(**{**base, **changes})


def mask_centroid(frame, colour):
    """Centre of the pixels whose colour is (near) the sprite's, in pixels, x then y."""
    rgb = (frame.permute(1, 2, 0).numpy() + 1) / 2
    inside = np.abs(rgb - np.asarray(COLOURS[colour])).max(axis=-1) < 0.05
    ys, xs = np.nonzero(inside)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5]), inside.sum()


def test_videos_are_deterministic_per_seed_and_differ_between_seeds():
    a, b = sprites.video_for_seed(7), sprites.video_for_seed(7)
    assert a == b
    assert torch.equal(sprites.draw(a, range(300)), sprites.draw(b, range(300)))
    assert sprites.video_for_seed(8) != a


def test_random_videos_cover_every_shape_colour_and_background_with_speeds_in_range():
    generator = np.random.default_rng(0)
    videos = [sprites.random_video(generator) for _ in range(300)]
    assert {v.shape for v in videos} == set(sprites.SHAPES)
    assert {v.colour for v in videos} == set(sprites.COLOURS)
    assert {v.background for v in videos} == set(sprites.BACKGROUNDS)
    speeds = [np.hypot(*v.velocity) for v in videos]
    assert sprites.SPEED_RANGE[0] <= min(speeds) and max(speeds) <= sprites.SPEED_RANGE[1]


def test_frames_show_the_named_colour_on_the_named_background_in_range():
    frames = sprites.draw(video(colour="yellow", background="gray"), [0, 100, 255])
    assert frames.shape == (3, 3, SIZE, SIZE)
    assert frames.min() >= -1 and frames.max() <= 1
    corner = (frames[0, :, 0, 0] + 1) / 2
    assert torch.allclose(corner, torch.tensor(sprites.BACKGROUNDS["gray"]), atol=1e-6)
    _, area = mask_centroid(frames[0], "yellow")
    assert abs(area - np.pi * 25) < 12   # a radius-5 disc, minus its anti-aliased rim


def test_sprite_moves_at_constant_velocity_away_from_the_borders():
    v = video(start=(10.0, 12.0), velocity=(0.75, 0.25))
    frames = sprites.draw(v, range(12))
    centroids = np.array([mask_centroid(f, "red")[0] for f in frames])
    np.testing.assert_allclose(centroids, sprites.centres(v, range(12)), atol=0.3)
    np.testing.assert_allclose(np.diff(centroids, axis=0), [[0.75, 0.25]] * 11, atol=0.3)


def test_sprite_bounces_off_the_borders_and_stays_inside_for_long_videos():
    v = video(velocity=(1.3, -0.9))
    where = sprites.centres(v, range(1000))
    assert where.min() >= v.radius - 1e-9 and where.max() <= SIZE - v.radius + 1e-9
    step = np.diff(where, axis=0)
    flips_x = np.nonzero(np.sign(step[1:, 0]) != np.sign(step[:-1, 0]))[0]
    assert len(flips_x) > 10                      # it keeps bouncing
    # elastic: the speed is constant except on the frames that cross a wall (folded back, so shorter)
    assert np.abs(step).max(axis=0) == pytest.approx([1.3, 0.9])
    assert np.mean(np.isclose(np.abs(step[:, 0]), 1.3)) > 0.9


def test_space_to_depth_is_a_lossless_round_trip():
    frames = sprites.draw(sprites.video_for_seed(3), range(5))
    latents = latent.encode(frames)
    assert latents.shape == (5, latent.LATENT_CHANNELS, SIZE // 2, SIZE // 2)
    assert torch.equal(latent.decode(latents), frames)
    # each latent channel is one sub-pixel phase of one colour: channel 0 = red at even rows/cols
    assert torch.equal(latents[:, 0], frames[:, 0, 0::2, 0::2])


def test_prompts_become_one_token_per_slot_and_unknown_words_are_refused():
    assert text.tokenize("a red circle on gray") == [text.VOCABULARY.index(w) for w in ("red", "circle", "gray")]
    assert text.tokenize("square") == [text.VOCABULARY.index(w) for w in ("<no-colour>", "square",
                                                                        "<no-background>")]
    with pytest.raises(AnimLongError, match="'dragon'.*colours"):
        text.tokenize("a red dragon")
    assert text.TextEmbedding().encode(["blue diamond", ""]).shape == (2, 3, text.CONTEXT_DIM)


def test_training_resumes_from_its_checkpoint(tmp_path):
    from lib_animlong.smallmodel import train
    common = ["--dir", str(tmp_path), "--batch", "2", "--threads", "1", "--log-every", "1"]
    train.main(["image", "--steps", "2"] + common)
    first = torch.load(tmp_path / "image.pt", weights_only=True)
    train.main(["image", "--steps", "3"] + common)
    second = torch.load(tmp_path / "image.pt", weights_only=True)
    assert (first["step"], second["step"]) == (2, 3)
    assert [line.split(",")[0] for line in (tmp_path / "image_log.csv").read_text().split()[1:]] == ["1", "2", "3"]
    changed = [k for k in first["model"] if not torch.equal(first["model"][k], second["model"][k])]
    assert changed


def test_the_shipped_image_model_loads_and_denoises_a_sprite_frame():
    from lib_animlong.smallmodel import config, weights
    unet, embedding = weights.load_image_model()
    clean = latent.encode(sprites.draw(video(), [0, 40]))
    abar = config.alphas_cumprod()[400]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    noisy = abar.sqrt() * clean + (1 - abar).sqrt() * noise
    with torch.no_grad():
        eps = unet(noisy, torch.tensor([400, 400]), context=embedding.encode(["red circle on black"] * 2))
    predicted = (noisy - (1 - abar).sqrt() * eps) / abar.sqrt()
    naive = noisy / abar.sqrt()
    assert (predicted - clean).pow(2).mean() < 0.2 * (naive - clean).pow(2).mean()


def test_motion_batches_draw_their_clip_length_from_the_step_within_the_range():
    from lib_animlong.smallmodel.train import SpriteBatches, clip_lengths
    assert clip_lengths("16") == 16 and clip_lengths("8-32") == (8, 32)
    with pytest.raises(SystemExit, match="8-32"):
        clip_lengths("32-8")
    batches = SpriteBatches(seed=0, videos=2, frames=(8, 32), min_snr=5.0)
    lengths = []
    for step in range(12):
        batch = batches.at(step)
        frames = int(batch["frames"])
        assert 8 <= frames <= 32
        assert batch["noisy"].shape[0] == 2 * frames and batch["tokens"].shape[0] == 2
        lengths.append(frames)
    assert len(set(lengths)) > 3                       # lengths vary over the steps
    again = batches.at(5)
    assert int(again["frames"]) == lengths[5] and torch.equal(again["noisy"], batches.at(5)["noisy"])


def test_fine_tuning_starts_from_the_shipped_motion_modules(tmp_path):
    from argparse import Namespace
    from lib_animlong.smallmodel.train import MotionStage
    from lib_animlong.smallmodel.weights import load_motion_model
    args = Namespace(seed=0, clip="8-32", clips=1, min_snr=5.0, dir=str(tmp_path), from_shipped=True, device="cpu")
    stage = MotionStage(args)
    shipped = load_motion_model().state_dict()
    for key, value in stage.motion.state_dict().items():
        assert torch.equal(value, shipped[key]), key
    batch = stage.batches.at(3)
    with torch.no_grad():
        alone = stage.loss(batch)
        with stage.forward_context():
            together = stage.loss(batch)
    assert together.item() != alone.item()    # the motion modules take part inside the context only
