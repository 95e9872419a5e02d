import pytest
import torch

from lib_animlong.errors import AnimLongError
from lib_animlong.noise import frame_noise, freenoise, initial_noise
from lib_animlong.options import AnimationOptions

SHAPE = (4, 3, 2)


def test_frame_i_draws_from_its_own_cpu_generator_seeded_seed_plus_i():
    noise = frame_noise(1234, 5, SHAPE)
    for i in range(5):
        expected = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(1234 + i))
        assert torch.equal(noise[i], expected)
    assert torch.equal(frame_noise(1234, 3, SHAPE), noise[:3])  # independent of the animation's length
    assert frame_noise(1234, 2, SHAPE, torch.float16).dtype == torch.float16


def test_freenoise_reuses_shuffled_earlier_windows_deterministically():
    options = AnimationOptions(frames=40, context_length=16, noise="freenoise")
    noise = initial_noise(7, options, SHAPE)
    plain = frame_noise(7, 40, SHAPE)
    assert torch.equal(noise[:16], plain[:16])
    for start in range(16, 40, 4):
        chunk = noise[start:start + 4]
        earlier = noise[start - 16:start - 12]
        matches = [[torch.equal(a, b) for b in earlier] for a in chunk]
        assert all(sum(row) == 1 for row in matches) and sorted(row.index(True) for row in matches) == [0, 1, 2, 3]
    assert torch.equal(noise, initial_noise(7, options, SHAPE))
    assert not torch.equal(noise[16:], freenoise(frame_noise(7, 40, SHAPE), 16, 4, seed=8)[16:])


def test_per_frame_noise_is_the_default():
    assert torch.equal(initial_noise(3, AnimationOptions(frames=6), SHAPE), frame_noise(3, 6, SHAPE))


def test_bad_noise_options_are_refused_by_name():
    with pytest.raises(AnimLongError, match="'noise'"):
        AnimationOptions.from_dict({"noise": "pink"})
    with pytest.raises(AnimLongError, match="'frames'"):
        frame_noise(1, 0, SHAPE)
    with pytest.raises(AnimLongError, match="FreeNoise"):
        freenoise(frame_noise(1, 4, SHAPE), 0, 4, 1)


def test_ancestral_noise_of_a_frame_is_the_same_whatever_the_length_and_not_its_initial_noise():
    from lib_animlong.noise import ancestral_noise_sampler
    short, long = ancestral_noise_sampler(9, range(16), SHAPE), ancestral_noise_sampler(9, range(32), SHAPE)
    initial = frame_noise(9, 32, SHAPE)
    for _ in range(3):                                   # three sampler steps
        a, b = short(1.0, 0.5), long(1.0, 0.5)
        assert a.shape == (16,) + SHAPE and b.shape == (32,) + SHAPE
        assert torch.equal(a, b[:16])
        assert not any(torch.equal(b[i], initial[i]) for i in range(32))
    # a clip of some frames (keyframes first) draws each frame's own stream
    sparse = ancestral_noise_sampler(9, [0, 5, 31], SHAPE)(1.0, 0.5)
    first = ancestral_noise_sampler(9, range(32), SHAPE)(1.0, 0.5)
    assert torch.equal(sparse, first[[0, 5, 31]])
    # the stream continues after the initial draw of frame_noise, like the webui's per-image generators
    generator = torch.Generator("cpu").manual_seed(9 + 5)
    torch.randn(SHAPE, generator=generator)
    assert torch.equal(first[5], torch.randn(SHAPE, generator=generator))
