import pytest
import torch

from lib_animlong import kdiffusion
from lib_animlong.context.window import Window
from lib_animlong.errors import AnimLongError
from lib_animlong.motion.call import CallSlot, MotionCall
from lib_animlong.motion.module import TemporalTransformer
from lib_animlong.options import AnimationOptions
from lib_animlong.sampling import WindowedDenoiser

SIGMAS = torch.tensor([10.0, 4.0, 1.5, 0.5, 0.0])


def fixed(*windows):
    return lambda step, total, n, options: list(windows)


def window(frames, weights=None, references=()):
    frames = tuple(frames)
    return Window(frames, tuple(weights or (1.0,) * len(frames)), tuple(references))


def denoiser(model, slot, frames, planner, **options):
    return WindowedDenoiser(model, slot, AnimationOptions(frames=frames, **options), planner=planner, sigmas=SIGMAS)


def test_overlapping_outputs_are_fused_by_weight_and_every_frame_is_covered():
    slot = CallSlot()
    calls = []

    def model(x, sigma):
        calls.append(slot.current.frame_indices)
        return torch.full_like(x, float(len(calls)))

    plan = fixed(window(range(0, 6), [1, 1, 1, 1, 3, 1]), window(range(4, 10), [1, 2, 1, 1, 1, 1]))
    out = denoiser(model, slot, 10, plan)(torch.zeros(20, 1, 1, 1), torch.tensor(4.0))
    expected = torch.tensor([1, 1, 1, 1, (3 * 1 + 1 * 2) / 4, (1 * 1 + 2 * 2) / 3, 2, 2, 2, 2])
    assert calls == [tuple(range(0, 6)), tuple(range(4, 10))]
    assert torch.allclose(out.flatten(), expected.repeat(2).float())
    assert slot.current is None


def test_blocks_and_row_arguments_are_sliced_together_recursively():
    slot = CallSlot()
    seen = []

    def model(x, sigma, cond):
        seen.append((x[:, 0, 0, 0].tolist(), sigma.tolist(), cond["c_crossattn"][0][:, 0].tolist(),
                     cond["c_concat"][0].shape, cond["scale"]))
        return x

    rows = torch.arange(12.0)  # 2 blocks (cond | uncond) of 6 frames
    x = rows.view(12, 1, 1, 1)
    cond = {"c_crossattn": [rows.view(12, 1) + 100], "c_concat": [torch.zeros(3, 2)], "scale": 7}
    out = denoiser(model, slot, 6, fixed(window([4, 5, 0]), window([1, 2, 3])))(x, rows + 50, cond=cond)
    assert torch.equal(out, x)
    assert seen[0][0] == [4, 5, 0, 10, 11, 6]
    assert seen[0][1] == [54, 55, 50, 60, 61, 56]
    assert seen[0][2] == [104, 105, 100, 110, 111, 106]
    assert seen[0][3] == (3, 2) and seen[0][4] == 7
    with pytest.raises(AnimLongError, match=r"\[1, 2, 3\] uncovered"):
        denoiser(model, slot, 6, fixed(window([4, 5, 0])))(x, rows, cond=cond)


def test_step_comes_from_sigma_or_the_caller_and_the_slot_is_cleared_on_error():
    slot = CallSlot()
    steps = []

    def plan(step, total, n, options):
        steps.append((step, total))
        return [window(range(n))]

    def model(x, sigma):
        assert slot.current.frames == 4
        return x

    run = denoiser(model, slot, 4, plan)
    x = torch.zeros(4, 1)
    run(x, torch.full((4,), 4.0))
    run(x, torch.full((4,), 1.4))   # a sampler's intermediate sigma maps to the nearest step
    run(x, torch.tensor(10.0), step=3)
    assert steps == [(1, 4), (2, 4), (3, 4)]

    def failing(x, sigma):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        denoiser(failing, slot, 4, fixed(window(range(2)), window(range(2, 4))))(x, torch.tensor(4.0))
    assert slot.current is None


def test_independent_windows_share_calls_up_to_frames_per_call():
    torch.manual_seed(1)
    module = TemporalTransformer(32, pe_length=24).eval()
    slot = CallSlot()
    calls = []

    def model(x, sigma):
        calls.append(x.shape[0])
        return module(x, slot.current)

    plan = fixed(*[window(range(s, s + 4), [1, 2, 2, 1]) for s in (0, 3, 6, 9, 12)])
    x = torch.randn(32, 32, 2, 2)  # 2 blocks of 16 frames
    one_by_one = denoiser(model, slot, 16, plan)(x, torch.tensor(4.0))
    assert calls == [8] * 5
    calls.clear()
    grouped = denoiser(model, slot, 16, plan, frames_per_call=8)(x, torch.tensor(4.0))
    assert calls == [16, 16, 8]
    assert torch.allclose(grouped, one_by_one, atol=1e-5)


def test_windows_with_references_are_not_grouped():
    slot = CallSlot()
    calls = []

    def model(x, sigma):
        calls.append(slot.current.frame_indices)
        return x

    plan = fixed(window(range(0, 4)), window(range(4, 8)), window(range(8, 12), references=(0,)))
    denoiser(model, slot, 12, plan, frames_per_call=12)(torch.zeros(12, 1), torch.tensor(4.0))
    assert calls == [tuple(range(4)), tuple(range(4, 8)), tuple(range(8, 12))]


@pytest.mark.parametrize("bad, message", [
    (fixed(window([0, 1, 9])), "outside 0..7"),
    (fixed(window(range(8), [1.0] * 7 + [0.0])), "not positive"),
    (fixed(), "empty"),
])
def test_bad_plans_are_refused(bad, message):
    with pytest.raises(AnimLongError, match=message):
        denoiser(lambda x, sigma: x, CallSlot(), 8, bad)(torch.zeros(8, 1), torch.tensor(1.0))


def test_rows_that_are_not_whole_blocks_are_refused():
    with pytest.raises(AnimLongError, match="not a whole number of 8-frame blocks"):
        denoiser(lambda x, sigma: x, CallSlot(), 8, fixed(window(range(8))))(torch.zeros(12, 1), torch.tensor(1.0))


def test_fixed_seed_sampling_is_deterministic_through_a_real_sampler():
    sampling, _ = kdiffusion.load()
    module = TemporalTransformer(32, pe_length=24).eval()
    slot = CallSlot()

    def model(x, sigma):
        return module(x, slot.current) / (1 + sigma.view(-1, 1, 1, 1) ** 2)

    plan = fixed(window(range(0, 8), [1, 2, 3, 4, 4, 3, 2, 1]), window(range(4, 12), [1, 2, 3, 4, 4, 3, 2, 1]))
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        x = torch.randn(12, 32, 2, 2) * SIGMAS[0]
        with torch.no_grad():
            results.append(sampling.sample_euler(denoiser(model, slot, 12, plan), x, SIGMAS, disable=True))
    assert torch.equal(results[0], results[1])


def cfg_model(denoiser, cond, uncond, scale=7.0):
    """The webui's CFG layout: x_in = [cond rows | uncond rows], one call, cond as a dict."""
    def model(x, sigma):
        out = denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]),
                       cond={"c_crossattn": [torch.cat([cond, uncond])]})
        positive, negative = out.chunk(2)
        return negative + (positive - negative) * scale
    return model


def sample_on_unet(make_model, frames=8, steps=3):
    from lib_animlong.motion.inject import inject_motion
    from unets import TINY_CONTEXT_DIM, LatentModel, tiny_motion, tiny_sd15_unet

    sampling, external = kdiffusion.load()
    owner = LatentModel(tiny_sd15_unet())
    inner = external.CompVisDenoiser(owner)
    sigmas = inner.get_sigmas(steps)
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(frames, 4, 8, 8, generator=generator) * sigmas[0]
    cond = torch.randn(frames, 4, TINY_CONTEXT_DIM, generator=generator)
    uncond = torch.randn(frames, 4, TINY_CONTEXT_DIM, generator=generator)
    with torch.no_grad(), inject_motion(owner.diffusion_model, tiny_motion()) as injected:
        denoiser = make_model(inner, injected.slot, sigmas)
        return sampling.sample_euler(cfg_model(denoiser, cond, uncond), x, sigmas, disable=True)


@pytest.mark.parametrize("plan", [
    fixed(window(range(8), [1, 2, 3, 4, 4, 3, 2, 1])),
    fixed(window(range(8), [1, 2, 3, 4, 4, 3, 2, 1]), window(range(8))),  # the slicing and fusion path
])
def test_one_window_over_all_frames_is_bit_identical_to_the_plain_call_on_the_real_unet(plan):
    def plain(inner, slot, sigmas):
        def model(x, sigma, **kwargs):
            with slot.use(MotionCall(frames=8)):
                return inner(x, sigma, **kwargs)
        return model

    def windowed(inner, slot, sigmas):
        options = AnimationOptions(frames=8, context_length=8)
        return WindowedDenoiser(inner, slot, options, planner=plan, sigmas=sigmas)

    assert torch.equal(sample_on_unet(plain), sample_on_unet(windowed))


def test_windows_with_references_run_on_the_real_unet():
    def plan(step, total, n, options):
        return [window(range(0, 5), [1, 1, 1, 1, 0.5]), window(range(4, 8), [0.5, 1, 1, 1], references=(0, 1))]

    def windowed(references):
        def make(inner, slot, sigmas):
            options = AnimationOptions(frames=8, reference_positions=references)
            return WindowedDenoiser(inner, slot, options, planner=plan, sigmas=sigmas)
        return make

    unique, none = sample_on_unet(windowed("unique")), sample_on_unet(windowed("none"))
    assert torch.isfinite(unique).all() and (unique - none).abs().max() > 1e-4
