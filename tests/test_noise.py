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
