"""Options fitted to the motion module's positional table before any work (issue 9.1), in the engine, the
headless renderer and the webui (stub), and the webui's attention choice and pass copy (9.4, 9.5)."""
import types

import pytest
import torch

from lib_animlong.context import plan
from lib_animlong.errors import AnimLongError
from lib_animlong.fitting import FittedOptions, fit_options
from lib_animlong.options import AnimationOptions
from webui_stub.harness import webui  # noqa: F401  (fixture)

# v1, HotShot-XL 24; v2/v3/SDXL beta 32; AnimateLCM 64; LongAnimateDiff 64/128
TABLES = [24, 32, 64, 128]


def positions_needed(window):
    """Positions a window takes with 'unique' reference positions: its frames and its other references."""
    return len(window.frames) + len(set(window.references) - set(window.frames))


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("frames", [8, 20, 48, 96])
def test_the_default_options_fit_every_table(table, frames):
    fitted = fit_options(AnimationOptions(frames=frames), table)
    assert isinstance(fitted, FittedOptions) and fitted.table == table
    for step in range(20):
        assert max(positions_needed(w) for w in plan(step, 20, frames, fitted.options)) <= table
    if fitted.adjustments:   # only what had to change is changed, and each change is said
        changed = [k for k, v in fitted.options.to_dict().items() if v != AnimationOptions(frames=frames).to_dict()[k]]
        assert len(changed) == len(fitted.adjustments)
        assert all(any(line.startswith(name) for line in fitted.adjustments) for name in changed)


REFERENCES = dict(references="previous+anchors")   # the default is "none": these tests ask for references


def test_v1_keeps_references_in_what_its_table_leaves():
    fitted = fit_options(AnimationOptions(frames=48, **REFERENCES), 24)
    assert fitted.options.reference_budget == 8 and fitted.options.references == "previous+anchors"
    assert fitted.adjustments == ("reference_budget 0 -> 8 (a window of 16 frames leaves 8 of the table's 24 "
                                  "positions for references)",)
    assert "reference_budget 0 -> 8" in fitted.infotext()
    with_references = AnimationOptions(frames=48, **REFERENCES)
    assert fit_options(with_references, 32) == FittedOptions(with_references, 32, ())


def test_a_window_as_long_as_the_table_turns_references_off():
    fitted = fit_options(AnimationOptions(frames=64, context_length=32, **REFERENCES), 32)
    assert fitted.options.references == "none" and fitted.adjustments[0].startswith("references previous+anchors")
    keyframes = fit_options(AnimationOptions(frames=64, context_length=32, keyframes_first=True), 32)
    assert keyframes.options.reference_positions == "none"


def test_a_chosen_context_length_that_does_not_fit_is_refused_naming_it():
    with pytest.raises(AnimLongError, match=r"Option 'context_length' \(40\) is longer than this motion module's "
                                            r"positional table \(32 frames\).*Set context_length to 32 or less"):
        fit_options(AnimationOptions(frames=64, context_length=40), 32)


def test_the_default_context_length_is_lowered_to_a_shorter_table():
    fitted = fit_options(AnimationOptions(frames=64, **REFERENCES), 12)
    assert fitted.options.context_length == 12 and fitted.options.references == "none"
    assert fitted.adjustments[0] == "context_length 16 -> 12 (the motion module's positional table has 12 frames)"


def test_a_chosen_reference_budget_that_does_not_fit_is_refused_naming_it():
    with pytest.raises(AnimLongError, match=r"Option 'reference_budget' \(12\) does not fit.*needs 28 positions.*"
                                            r"table has 24. Set reference_budget to 8 or less"):
        fit_options(AnimationOptions(frames=64, reference_budget=12, **REFERENCES), 24)
    assert fit_options(AnimationOptions(frames=64, reference_budget=6, **REFERENCES), 24).adjustments == ()
    none = AnimationOptions(frames=64, reference_budget=12, reference_positions="none")
    assert fit_options(none, 24).options == none     # references without positions need none


# ---- the headless renderer fits before any sampling --------------------------------------------------

class Sampled(Exception):
    pass


def render_options(monkeypatch, argv):
    """The options `python -m lib_animlong render` would sample with (sampling itself is stopped)."""
    from lib_animlong import render
    from lib_animlong.__main__ import main
    seen = {}

    def sample_latents(unet, motion, cond, uncond, alphas, shape, options, settings, callback=None, **kwargs):
        seen["options"] = options
        raise Sampled
    monkeypatch.setattr(render, "sample_latents", sample_latents)
    try:
        code = main(["render", "--quiet", *argv])
    except Sampled:
        return seen["options"]
    return code


def test_render_fits_the_context_length_before_sampling(monkeypatch, tmp_path):
    options = render_options(monkeypatch, ["--frames", "64", "--context-length", "32", "--references",
                                           "previous+anchors", "--out", str(tmp_path)])
    assert isinstance(options, AnimationOptions)
    assert options.context_length == 32 and options.references == "none"   # the sprite model's table: 32


def test_render_refuses_a_context_length_longer_than_the_table_before_sampling(monkeypatch, tmp_path, capsys):
    code = render_options(monkeypatch, ["--frames", "64", "--context-length", "40", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--context-length (40) is longer than this motion module's positional table (32" in err
    assert "Set --context-length to 32 or less" in err


# ---- the webui: fitted options used and recorded; attention and pass copy ---------------------------

ANIMATION = dict(enable=True, motion_module="mm_v1.safetensors", formats=["GIF"], frames=20, fps=4)


def test_a_v1_module_with_references_animates_and_the_infotext_says_what_was_fitted(webui):
    from modules.infotext_utils import parse_generation_parameters
    from lib_animlong.webui.generation import FIT_INFOTEXT_KEY
    from lib_animlong.webui.request import INFOTEXT_KEY
    webui.add_motion_file("mm_v1.safetensors", version="v1")
    p, processed = webui.txt2img([dict(ANIMATION, **REFERENCES)], steps=2)
    assert len(processed.images) >= 1 and p.animlong.error is None
    params = parse_generation_parameters(processed.infotexts[0])
    assert "reference_budget=8" in params[INFOTEXT_KEY]
    assert params[FIT_INFOTEXT_KEY].startswith("reference_budget 0 -> 8")
    assert p.animlong.request.options.reference_budget == 8


def test_a_context_length_longer_than_a_v2_table_is_refused_before_sampling(webui):
    webui.add_motion_file("mm_v1.safetensors", version="v2")
    with pytest.raises(AnimLongError, match=r"'context_length' \(40\).*positional table \(32 frames\)"):
        webui.txt2img([dict(ANIMATION, frames=48, context_length=40)], steps=2)


def test_the_webui_optimisation_chooses_the_temporal_attention(webui, monkeypatch):
    from modules import sd_hijack
    from lib_animlong.motion import attention
    used = []

    def spy(q, k, v, scale):
        used.append(q.shape)
        return attention.plain_attention(q, k, v, scale)
    monkeypatch.setitem(attention.ATTENTION, "plain", spy)
    monkeypatch.setattr(sd_hijack, "current_optimizer", types.SimpleNamespace(name="Doggettx"))
    webui.add_motion_file("mm_v1.safetensors", version="v2")
    webui.txt2img([dict(ANIMATION, frames=6, context_length=4)], steps=1)
    assert used
    monkeypatch.setattr(sd_hijack, "current_optimizer", types.SimpleNamespace(name="Flash-3"))
    with pytest.raises(AnimLongError, match="'Flash-3'.*Cross attention optimization"):
        webui.txt2img([dict(ANIMATION, frames=6, context_length=4)], steps=1)


def test_the_cached_module_keeps_the_files_dtype_and_weights_after_a_generation(webui, monkeypatch):
    from lib_animlong.motion import placement, synthetic
    from lib_animlong.motion.loader import MotionCache
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", 32), seed=5, dtype=torch.float16)
    synthetic.save(state, str(webui.motion_dir / "half.safetensors"))
    caches, copies = [], []
    webui_get = MotionCache.get

    def get(self, path):
        caches.append(self)
        return webui_get(self, path)
    monkeypatch.setattr(MotionCache, "get", get)
    real_placed = placement.placed

    def recording(motion, device, dtype=None):
        copies.append(dtype)
        return real_placed(motion, device, dtype)
    monkeypatch.setattr("lib_animlong.webui.generation.placed", recording)
    webui.txt2img([dict(ANIMATION, motion_module="half.safetensors", frames=6, context_length=4)], steps=2)
    assert copies == [torch.float32]            # one copy for the pass, in the UNet's dtype
    cached = caches[0].get(str(webui.motion_dir / "half.safetensors")).motion
    for key, value in cached.state_dict().items():
        assert value.dtype == torch.float16 and value.device.type == "cpu" and torch.equal(value, state[key]), key
