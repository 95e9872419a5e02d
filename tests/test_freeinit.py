"""FreeInit (freeinit.py): the re-initialised latents keep the low band of the re-noised sample and the high
band of the fresh noise, per video, with the paper's filters."""
import pytest
import torch

from lib_animlong.errors import AnimLongError
from lib_animlong.freeinit import FILTERS, fresh_noise, low_pass, reinitialise
from lib_animlong.options import AnimationOptions

FRAMES, C, H, W = 16, 2, 8, 8


def _video(videos=1, seed=0, frames=FRAMES):
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(videos * frames, C, H, W, generator=generator, dtype=torch.float64) for _ in range(3))


def _spectrum(rows, frames=FRAMES):
    video = rows.reshape(-1, frames, C, H, W).transpose(1, 2)
    return torch.fft.fftn(video, dim=(-3, -2, -1))


@pytest.mark.parametrize("kind", FILTERS)
def test_the_result_is_the_low_band_of_the_renoised_sample_plus_the_high_band_of_fresh_noise(kind):
    x0, eps0, fresh = _video()
    sigma = 14.6
    out = reinitialise(x0, FRAMES, sigma, eps0, fresh, kind, 0.25, 0.5)
    mask = low_pass(FRAMES, H, W, kind, 0.25, 0.5)
    expected = mask * _spectrum(x0 + sigma * eps0) + (1 - mask) * _spectrum(sigma * fresh)
    assert torch.allclose(_spectrum(out), expected, atol=1e-8)
    if kind in ("ideal", "box"):       # binary masks: exactly one band from each
        low, high = mask.bool(), ~mask.bool()
        assert low.any() and high.any()
        assert torch.allclose(_spectrum(out)[..., low], _spectrum(x0 + sigma * eps0)[..., low], atol=1e-8)
        assert torch.allclose(_spectrum(out)[..., high], _spectrum(sigma * fresh)[..., high], atol=1e-8)
    # the DC of every channel (the mean over frames and pixels) is the re-noised sample's
    assert torch.allclose(out.reshape(FRAMES, C, -1).mean((0, 2)), (x0 + sigma * eps0).reshape(FRAMES, C, -1)
                          .mean((0, 2)), atol=1e-8)


def test_filters_follow_the_paper_shapes_and_stop_frequencies():
    for kind in FILTERS:
        mask = low_pass(FRAMES, H, W, kind)
        assert mask.shape == (FRAMES, H, W) and mask[0, 0, 0] == 1
        assert float(mask.min()) >= 0 and float(mask.max()) <= 1
        flipped = mask[(-torch.arange(FRAMES)) % FRAMES][:, (-torch.arange(H)) % H][:, :, (-torch.arange(W)) % W]
        assert torch.equal(mask, flipped)          # symmetric: the result stays real
        assert float(mask[FRAMES // 2, H // 2, W // 2]) < 1e-3   # the highest frequency is stopped
    f = 2 * torch.fft.fftfreq(64, dtype=torch.float64)
    butterworth = low_pass(1, 1, 64, "butterworth", d_s=0.25)[0, 0]
    assert torch.allclose(butterworth, 1 / (1 + (f / 0.25) ** 8))      # order 4 on D^2: (D / d_s)^8
    gaussian = low_pass(1, 1, 64, "gaussian", d_s=0.25)[0, 0]
    assert torch.allclose(gaussian, torch.exp(-f ** 2 / (2 * 0.25 ** 2)))
    ideal = low_pass(1, 1, 64, "ideal", d_s=0.25)[0, 0]
    assert torch.equal(ideal.bool(), f.abs() <= 0.25)
    # the temporal stop frequency scales the frame axis only: at d_t the butterworth is at half
    t = 2 * torch.fft.fftfreq(32, dtype=torch.float64)
    temporal = low_pass(32, 1, 1, "butterworth", d_s=0.25, d_t=0.5)[:, 0, 0]
    assert torch.allclose(temporal, 1 / (1 + (t / 0.5) ** 8))
    box = low_pass(32, 8, 8, "box", d_s=0.25, d_t=0.5)
    assert torch.equal(box[:, 0, 0].bool(), t.abs() <= 0.5) and box.sum() == (t.abs() <= 0.5).sum() * 9


def test_each_video_is_filtered_on_its_own():
    x0, eps0, fresh = _video(videos=3, seed=1)
    together = reinitialise(x0, FRAMES, 2.0, eps0, fresh)
    for v in range(3):
        rows = slice(v * FRAMES, (v + 1) * FRAMES)
        alone = reinitialise(x0[rows], FRAMES, 2.0, eps0[rows], fresh[rows])
        assert torch.allclose(together[rows], alone, atol=1e-10)
    changed = x0.clone()
    changed[FRAMES:] += 5.0                   # another video changes: the first is untouched
    assert torch.equal(reinitialise(changed, FRAMES, 2.0, eps0, fresh)[:FRAMES], together[:FRAMES])


def test_the_fft_runs_over_every_frame_of_a_long_video():
    x0, eps0, fresh = _video(frames=256)
    out = reinitialise(x0, 256, 1.0, eps0, fresh, "ideal", 0.25, 0.25)
    far = x0.clone()
    far[200] += 1.0                           # a frame far from frame 0 still reaches it through the low band
    assert not torch.allclose(reinitialise(far, 256, 1.0, eps0, fresh, "ideal", 0.25, 0.25)[0], out[0])


def test_dtype_and_shape_follow_the_latents_and_bad_input_is_refused():
    x0, eps0, fresh = (t.float() for t in _video())
    out = reinitialise(x0, FRAMES, torch.tensor(3.0), eps0, fresh)
    assert out.shape == x0.shape and out.dtype == torch.float32
    with pytest.raises(AnimLongError, match="videos"):
        reinitialise(x0[:-1], FRAMES, 1.0, eps0[:-1], fresh[:-1])
    with pytest.raises(AnimLongError, match="fresh noise"):
        reinitialise(x0, FRAMES, 1.0, eps0, fresh[:-1])
    with pytest.raises(AnimLongError, match="freeinit_filter"):
        low_pass(4, 4, 4, "triangle")
    with pytest.raises(AnimLongError, match="freeinit_d_t"):
        low_pass(4, 4, 4, d_t=0)


def test_fresh_noise_is_per_frame_seed_and_pass_and_not_the_initial_noise():
    a = fresh_noise([10, 11, 12], 1, (C, H, W))
    assert torch.equal(a[1:], fresh_noise([11, 12], 1, (C, H, W)))      # frame i's noise: independent of N
    assert not torch.equal(a, fresh_noise([10, 11, 12], 2, (C, H, W)))  # a new draw per pass
    initial = torch.randn((C, H, W), generator=torch.Generator().manual_seed(10))
    assert not torch.equal(a[0], initial)
    assert abs(float(a.std()) - 1) < 0.2
    with pytest.raises(AnimLongError):
        fresh_noise([1], 0, (C, H, W))


@pytest.mark.parametrize("field, value, message", [
    ("freeinit_iterations", -1, "at least 0"), ("freeinit_iterations", 6, "at most 5"),
    ("freeinit_filter", "sinc", "one of butterworth"), ("freeinit_d_s", 0.0, "at least 0.01"),
    ("freeinit_d_t", 1.5, "at most 1.0")])
def test_options_are_validated_naming_the_field(field, value, message):
    with pytest.raises(AnimLongError, match=f"'{field}'.*{message}"):
        AnimationOptions.from_dict({field: value})
    assert AnimationOptions().freeinit_iterations == 0     # off by default


def test_the_webui_offers_freeinit_in_txt2img_only_and_refuses_it_in_img2img_by_name():
    from lib_animlong.webui.request import control_names, infotext_value, parse_args, parse_infotext_value
    assert "freeinit_iterations" in control_names(False) and "freeinit_d_t" in control_names(False)
    assert not any(name.startswith("freeinit") for name in control_names(True))
    request = parse_args([{"enable": True, "freeinit_iterations": 2, "freeinit_filter": "gaussian"}], False)
    assert request.options.freeinit_iterations == 2
    restored = parse_infotext_value(infotext_value(request, False))
    assert restored["freeinit_iterations"] == 2 and restored["freeinit_filter"] == "gaussian"
    with pytest.raises(AnimLongError, match="'freeinit_iterations'.*txt2img only"):
        parse_args([{"enable": True, "freeinit_iterations": 1}], True)
    with pytest.raises(AnimLongError, match="'freeinit_d_s'.*at least 0.01"):
        parse_args([{"enable": True, "freeinit_d_s": 0}], False)


def _watch_sampler(monkeypatch, calls):
    """Wrap the renderer's Euler sampler: record each run's frames, first sigma, input and output."""
    from lib_animlong import kdiffusion
    sampling, _ = kdiffusion.load()
    real = sampling.sample_euler

    def watching(model, x, sigmas, **kwargs):
        out = real(model, x, sigmas, **kwargs)
        calls.append((x.clone(), out.clone(), float(sigmas[0])))
        return out

    monkeypatch.setattr(sampling, "sample_euler", watching)


def _render(tmp_path, *argv):
    from lib_animlong.__main__ import main
    return main(["render", "--quiet", "--steps", "2", "--scale", "1", "--formats", "GIF", "--out", str(tmp_path),
                 *argv])


def test_the_renderer_samples_k_plus_1_times_chaining_freeinit_and_0_is_one_plain_run(tmp_path, monkeypatch):
    from lib_animlong import render
    model_calls = []
    real_forward = render._EpsModel.forward
    monkeypatch.setattr(render._EpsModel, "forward",
                        lambda self, *a, **k: model_calls.append(1) or real_forward(self, *a, **k))
    plain, chained = [], []
    _watch_sampler(monkeypatch, plain)
    assert _render(tmp_path, "--frames", "8", "--seed", "3") == 0
    plain_calls = len(model_calls)
    assert len(plain) == 1 and plain_calls > 0
    _watch_sampler(monkeypatch, chained)
    model_calls.clear()
    assert _render(tmp_path, "--frames", "8", "--seed", "3", "--freeinit-iterations", "2",
                   "--freeinit-filter", "gaussian", "--freeinit-d-s", "0.5") == 0
    assert len(chained) == 3 and len(model_calls) == 3 * plain_calls
    assert torch.equal(chained[0][0], plain[0][0]) and torch.equal(chained[0][1], plain[0][1])  # pass 1 = today
    unit = plain[0][0] / plain[0][2]
    for k in (1, 2):
        fresh = fresh_noise([3 + f for f in range(8)], k, unit.shape[1:])
        expected = reinitialise(chained[k - 1][1], 8, chained[0][2], unit, fresh, "gaussian", 0.5, 0.25)
        assert torch.allclose(chained[k][0], expected, atol=1e-5)
        assert chained[k][2] == chained[0][2]             # same sigmas every pass


def test_freeinit_with_keyframes_first_closed_loop_and_prompt_travel(tmp_path, monkeypatch):
    from PIL import Image
    calls = []
    _watch_sampler(monkeypatch, calls)
    assert _render(tmp_path, "--frames", "20", "--keyframes-first", "--closed-loop", "--freeinit-iterations", "1",
                   "--freeinit-renoise", "fresh",
                   "--prompt", "0: red circle on black\n10: blue square on white") == 0
    assert [x.shape[0] for x, _, _ in calls] == [10, 10, 20, 20]   # each pass of keyframes first: 2 runs
    assert Image.open(tmp_path / "animlong.gif").n_frames == 20


def test_the_progress_bar_counts_every_freeinit_run(tmp_path, capsys):
    from lib_animlong.__main__ import main
    assert main(["render", "--frames", "4", "--steps", "2", "--scale", "1", "--formats", "GIF",
                 "--freeinit-iterations", "2", "--out", str(tmp_path)]) == 0
    assert "6/6" in capsys.readouterr().err


def test_the_webui_plan_renoises_with_the_first_runs_noise_or_a_fresh_draw():
    from lib_animlong.webui.generation import FreeInitPlan
    x0, eps0, _ = (t.float() for t in _video(seed=4))
    seeds = tuple(range(50, 50 + FRAMES))
    sigma = 14.6
    high = fresh_noise(seeds, 1, (C, H, W))
    initial = FreeInitPlan(1, FRAMES, seeds, "butterworth", 0.25, 0.25, "initial")
    assert torch.allclose(initial.next_latents(x0, eps0 * sigma, sigma, 1),
                          reinitialise(x0, FRAMES, sigma, eps0, high), atol=1e-4)
    fresh = FreeInitPlan(1, FRAMES, seeds, "butterworth", 0.25, 0.25, "fresh")
    low = fresh_noise(seeds, 1, (C, H, W), stream=1)
    assert not torch.equal(low, high)
    assert torch.allclose(fresh.next_latents(x0, eps0 * sigma, sigma, 1),
                          reinitialise(x0, FRAMES, sigma, low, high), atol=1e-4)
