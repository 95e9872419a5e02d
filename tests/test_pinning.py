import pytest
import torch

from lib_animlong import kdiffusion
from lib_animlong.conditioning.pinning import Pin, PinnedFrames, image_pins, keyframe_stride, keyframes_first
from lib_animlong.context.window import Window
from lib_animlong.errors import AnimLongError
from lib_animlong.motion.call import CallSlot
from lib_animlong.options import AnimationOptions
from lib_animlong.sampling import WindowedDenoiser

SIGMAS = torch.tensor([8.0, 3.0, 1.0, 0.3, 0.0])
SHAPE = (4, 2, 2)


def halves(step, total, n, options):
    first, second = range(n // 2 + 1), range(max(0, n // 2 - 2), n)  # of different lengths
    return [Window(tuple(first), (1.0,) * len(first)), Window(tuple(second), (1.0,) * len(second))]


def prior_denoiser(x, sigma):
    """The exact denoiser of a unit Gaussian prior."""
    return x / (1 + sigma.view(-1, 1, 1, 1) ** 2)


def sample(frames, pins, noise, model=prior_denoiser, options=None):
    options = options or AnimationOptions(frames=len(frames))
    denoiser = WindowedDenoiser(model, CallSlot(), options, num_frames=len(frames), planner=halves,
                                sigmas=SIGMAS, pins=pins)
    sampling, _ = kdiffusion.load()
    return sampling.sample_euler(denoiser, noise[list(frames)] * SIGMAS[0], SIGMAS, disable=True)


def test_a_noised_pin_is_seen_at_the_current_noise_level_and_lands_on_its_latent():
    noise = torch.randn(8, *SHAPE)
    latent = torch.randn(SHAPE)
    inputs = []

    def model(x, sigma):
        if x.shape[0] == 5:  # the first window: frames 0..4
            inputs.append((x[1].clone(), sigma[1].item()))
        return prior_denoiser(x, sigma)

    pins = PinnedFrames([Pin(1, latent, noise[1])])
    out = sample(range(8), pins, noise, model)
    assert len(inputs) == 4
    for x, sigma in inputs:
        assert torch.allclose(x, latent + sigma * noise[1], atol=1e-6)
    assert torch.allclose(out[1], latent, atol=1e-5)
    free = sample(range(8), PinnedFrames([]), noise)
    assert torch.equal(out[[0, 2, 3, 4, 5, 6, 7]], free[[0, 2, 3, 4, 5, 6, 7]])  # a per-frame model


def test_strength_fades_linearly_and_zero_strength_changes_nothing():
    noise = torch.randn(8, *SHAPE)
    pins = PinnedFrames([Pin(0, torch.randn(SHAPE), noise[0], strength=0.8, fade=1.0)])
    assert [pins.strength(pins.pins[0], step, 5) for step in range(5)] == pytest.approx([0.8, 0.6, 0.4, 0.2, 0.0])
    off = PinnedFrames([Pin(0, torch.randn(SHAPE), noise[0], strength=0.0)])
    assert torch.equal(sample(range(8), off, noise), sample(range(8), None, noise))


def test_a_clean_pin_shows_the_latent_at_noise_level_zero_in_every_block():
    latent = torch.randn(SHAPE)
    pins = PinnedFrames([Pin(1, latent, torch.randn(SHAPE), mode="clean")])
    x = torch.randn(8, *SHAPE)  # cond and uncond blocks of 4 frames
    sigma = torch.full((8,), 3.0)
    pinned_x, pinned_sigma = pins.apply_input(x, sigma, 1, 4, 4)
    assert torch.equal(pinned_x[[1, 5]], latent.expand(2, *SHAPE))
    assert pinned_sigma.tolist() == [3.0, 0.0, 3.0, 3.0, 3.0, 0.0, 3.0, 3.0]
    assert torch.equal(pinned_x[[0, 2, 3, 4, 6, 7]], x[[0, 2, 3, 4, 6, 7]]) and sigma.tolist() == [3.0] * 8


def test_keyframes_first_samples_keyframes_jointly_then_pins_them():
    options = AnimationOptions(frames=16, context_length=4, pin_mode="noised")
    noise = torch.randn(16, *SHAPE)
    passes = []

    def run(frames, pins):
        passes.append((list(frames), sorted(p.frame for p in pins.pins)))
        return sample(frames, pins, noise)

    out, keys = keyframes_first(run, noise, options)
    assert keyframe_stride(options) == 4 and keys == [0, 4, 8, 12]
    assert passes == [([0, 4, 8, 12], []), (list(range(16)), [0, 4, 8, 12])]
    keyframes = sample(keys, PinnedFrames([]), noise)
    assert torch.allclose(out[keys], keyframes, atol=1e-5)


def test_image_pins_follow_the_options():
    noise = torch.randn(6, *SHAPE)
    first, last = torch.randn(SHAPE), torch.randn(SHAPE)
    pins = image_pins(AnimationOptions(frames=6, first_frame_strength=0.5, last_frame_strength=0.0,
                                       pin_fade=0.25), noise, first, last)
    assert [(p.frame, p.strength, p.fade) for p in pins.pins] == [(0, 0.5, 0.25)]
    pins = image_pins(AnimationOptions(frames=6), noise, first, last)
    assert [p.frame for p in pins.pins] == [0, 5] and torch.equal(pins.pins[1].noise, noise[5])


@pytest.mark.parametrize("pins, named", [
    ([Pin(0, torch.zeros(SHAPE), torch.zeros(SHAPE), mode="sharp")], "pin_mode"),
    ([Pin(0, torch.zeros(SHAPE), torch.zeros(SHAPE), fade=2.0)], "pin_fade"),
    ([Pin(0, torch.zeros(SHAPE), torch.zeros(SHAPE), strength=1.5)], "strength"),
    ([Pin(0, torch.zeros(SHAPE), torch.zeros(SHAPE), strength=0.5, mode="clean")], "clean"),
    ([Pin(0, torch.zeros(SHAPE), torch.zeros(SHAPE))] * 2, "more than once"),
    ([Pin(0, torch.zeros(SHAPE), torch.zeros(4, 3, 3))], "differ in shape"),
])
def test_bad_pins_are_refused(pins, named):
    with pytest.raises(AnimLongError, match=named):
        PinnedFrames(pins)


def test_bad_pin_options_are_refused_by_name():
    for values, named in [({"pin_mode": "sharp"}, "pin_mode"), ({"pin_fade": 1.5}, "pin_fade"),
                          ({"keyframe_stride": -1}, "keyframe_stride")]:
        with pytest.raises(AnimLongError, match=named):
            AnimationOptions.from_dict(values)


def test_a_pin_outside_the_animation_is_refused():
    pins = PinnedFrames([Pin(9, torch.zeros(SHAPE), torch.zeros(SHAPE))])
    with pytest.raises(AnimLongError, match="Pinned frame 9 is outside"):
        pins.apply_input(torch.zeros(8, *SHAPE), torch.tensor(1.0), 0, 4, 8)
