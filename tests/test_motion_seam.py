"""The motion module at the webui seam: files load past the webui's torch.load (issue 9.13), the cached
module is never moved or rounded by a pass (9.5), the attention backend is the caller's and stays under
its row limit (9.4)."""
import gc
import sys
import types
import weakref

import pytest
import torch

from lib_animlong.errors import AnimLongError
from lib_animlong.motion import synthetic
from lib_animlong.motion.attention import (ROW_LIMITS, choose_attention, chunked, plain_attention,
                                           sdpa_attention)
from lib_animlong.motion.call import MotionCall
from lib_animlong.motion.inject import inject_motion
from lib_animlong.motion.loader import MotionCache, load_motion_module
from lib_animlong.motion.module import TemporalSelfAttention
from lib_animlong.motion.placement import placed
from lib_animlong.webui.attention import WEBUI_OPTIMIZERS, backend_for, current_backend
from unets import tiny_motion, tiny_sd15_unet

WIDTH = 32


# ---- 9.13: every container loads where torch.load is the webui's checker ----------------------------

def webui_torch_load(report):
    """Like modules/safe.py's replacement: a report and None for a file its checker refuses."""
    def load(filename, *args, **kwargs):
        report.append(f"Error verifying pickled file from {filename}")
        return None
    return load


def save_legacy(state, path):
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path


CONTAINERS = [("zip.ckpt", False, False), ("zip-wrapped.ckpt", True, False), ("legacy.ckpt", False, True),
              ("legacy-wrapped.ckpt", True, True), ("m.pth", True, False), ("m.safetensors", False, False)]


@pytest.mark.parametrize("name, wrap, legacy", CONTAINERS)
def test_every_container_loads_when_torch_load_is_replaced(tmp_path, monkeypatch, name, wrap, legacy):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH), seed=3)
    content = synthetic.wrapped(state, state_dict=wrap)
    path = str(tmp_path / name)
    save_legacy(content, path) if legacy else synthetic.save(content, path)
    report = []
    monkeypatch.setattr(torch, "load", webui_torch_load(report))
    loaded = load_motion_module(path)
    assert report == []
    assert loaded.recognised.version == "v2"
    assert all(torch.equal(v, state[k]) for k, v in loaded.motion.state_dict().items())


def test_a_raising_torch_load_is_not_used_either(tmp_path, monkeypatch):
    path = synthetic.save(synthetic.random_state_dict(synthetic.sd15_spec("v1", WIDTH)), str(tmp_path / "v1.ckpt"))

    def refuse(*args, **kwargs):
        raise RuntimeError("global 'torch._utils/_rebuild_tensor_v3' is forbidden")
    monkeypatch.setattr(torch, "load", refuse)
    assert load_motion_module(path).recognised.version == "v1"


@pytest.mark.parametrize("legacy", [False, True])
def test_a_refusal_names_the_real_reason(tmp_path, monkeypatch, legacy):
    import argparse
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH))
    content = {"state_dict": state, "args": argparse.Namespace(lr=1)}
    path = str(tmp_path / "trained.ckpt")
    save_legacy(content, path) if legacy else torch.save(content, path)
    monkeypatch.setattr(torch, "load", webui_torch_load([]))
    with pytest.raises(AnimLongError, match=r"trained.ckpt contains Python objects.*could execute code.*Namespace"):
        load_motion_module(path)


def test_a_pickle_of_something_else_than_a_dictionary_says_what_it_holds(tmp_path, monkeypatch):
    path = str(tmp_path / "list.pth")
    torch.save([torch.zeros(2)], path)
    monkeypatch.setattr(torch, "load", webui_torch_load([]))
    with pytest.raises(AnimLongError, match="list.pth holds a list, not a dictionary of tensors"):
        load_motion_module(path)


# ---- 9.5: the cache stays on the CPU in the file's dtype; a pass runs a released copy ------------------

def bf16_unet():
    """The tiny SD1.5 UNet in bfloat16 (GroupNorms in fp32, which ldm's GroupNorm32 computes in anyway)."""
    unet = tiny_sd15_unet().to(torch.bfloat16)
    for module in unet.modules():
        if isinstance(module, torch.nn.GroupNorm):
            module.float()
    return unet


def test_cached_weights_stay_bit_identical_to_the_file_after_a_bfloat16_run(tmp_path):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH), seed=7)   # float32 file
    path = synthetic.save(state, str(tmp_path / "mm.safetensors"))
    cache = MotionCache()
    motion = cache.get(path).motion
    unet = bf16_unet()
    x, context = torch.randn(4, 4, 8, 8, dtype=torch.bfloat16), torch.randn(4, 5, 32, dtype=torch.bfloat16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        with inject_motion(unet, motion) as injected:
            assert {p.dtype for p in injected.motion.parameters()} == {torch.bfloat16}
            with injected.slot.use(MotionCall(frames=4)):
                out = unet(x, torch.full((4,), 400), context=context)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    again = cache.get(path).motion
    assert again is motion
    for key, value in again.state_dict().items():
        assert value.dtype == torch.float32 and value.device.type == "cpu"
        assert torch.equal(value, state[key]), key


def test_the_pass_copy_is_released_at_exit_even_on_error():
    motion = tiny_motion("v3")
    before = {k: v.clone() for k, v in motion.state_dict().items()}
    refs = []
    with pytest.raises(RuntimeError, match="interrupted"):
        with placed(motion, "cpu", torch.float16) as copy:
            assert copy is not motion
            assert {p.dtype for p in copy.parameters()} == {torch.float16}
            refs = [weakref.ref(t) for t in list(copy.parameters()) + list(copy.buffers())]
            raise RuntimeError("interrupted")
    gc.collect()
    assert refs and all(ref() is None for ref in refs)          # no tensor of the pass is alive
    assert all(t.is_meta for t in list(copy.parameters()) + list(copy.buffers()))   # even via `copy`
    assert all(torch.equal(v, before[k]) and v.dtype == torch.float32 for k, v in motion.state_dict().items())


def test_a_module_already_in_place_is_not_copied():
    motion = tiny_motion("v2")
    with placed(motion, "cpu", torch.float32) as same:
        assert same is motion
    assert all(not p.is_meta for p in motion.parameters())


def test_the_cache_holds_file_dtype_only(tmp_path):
    path = synthetic.save(synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH), dtype=torch.float16),
                          str(tmp_path / "h.safetensors"))
    cache = MotionCache()
    assert {p.dtype for p in load_motion_module(path, cache=cache).motion.parameters()} == {torch.float16}
    with pytest.raises(AnimLongError, match="CPU in the file's dtype"):
        load_motion_module(path, dtype=torch.float32, cache=cache)


# ---- 9.4: explicit attention backend, chunked under its row limit ------------------------------------

def qkv(batch, heads=8, frames=6, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, frames, dim, generator=g) for _ in range(3)]


@pytest.mark.parametrize("backend", [sdpa_attention, plain_attention])
@pytest.mark.parametrize("row_limit", [8, 24, 100])
def test_chunked_attention_equals_unchunked(backend, row_limit):
    q, k, v = qkv(37)
    calls = []

    def counting(q, k, v, scale):
        calls.append(q.shape[0] * q.shape[1])
        return backend(q, k, v, scale)
    whole = backend(q, k, v, 0.5)
    pieces = chunked(counting, row_limit)(q, k, v, 0.5)
    assert max(calls) <= row_limit and len(calls) == -(-37 // (row_limit // 8))
    torch.testing.assert_close(pieces, whole, rtol=0, atol=1e-6)


def fake_xformers(monkeypatch, calls):
    """xformers 0.0.21-0.0.26's memory_efficient_attention: fails from 65 536 batch x heads rows."""
    def memory_efficient_attention(q, k, v, scale=None):   # (batch, tokens, heads, d)
        calls.append(q.shape[0] * q.shape[2])
        if q.shape[0] * q.shape[2] > 65535:
            raise RuntimeError("CUDA error: invalid configuration argument")
        return plain_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale).transpose(1, 2)
    ops = types.SimpleNamespace(memory_efficient_attention=memory_efficient_attention)
    monkeypatch.setitem(sys.modules, "xformers", types.SimpleNamespace(ops=ops))
    monkeypatch.setitem(sys.modules, "xformers.ops", ops)


def test_xformers_stays_under_its_limit_at_512_px(monkeypatch):
    calls = []
    fake_xformers(monkeypatch, calls)
    q, k, v = qkv(2 * 64 * 64, heads=8, frames=2, dim=1)   # cond + uncond at 512 px: 65 536 rows
    out = choose_attention("xformers")(q, k, v, 1.0)
    assert max(calls) <= ROW_LIMITS["xformers"] and sum(calls) == 65536
    torch.testing.assert_close(out, plain_attention(q, k, v, 1.0), rtol=0, atol=1e-6)


def test_injection_uses_the_callers_backend_and_restores_it():
    unet, motion = tiny_sd15_unet(), tiny_motion("v2")
    layers = [m for m in motion.modules() if isinstance(m, TemporalSelfAttention)]
    before = [layer.attention for layer in layers]
    with inject_motion(unet, motion, attention="plain") as injected:
        used = {getattr(m.attention, "backend", m.attention) for m in injected.motion.modules()
                if isinstance(m, TemporalSelfAttention)}
        assert used == {plain_attention}
    assert [layer.attention for layer in layers] == before
    with pytest.raises(AnimLongError, match="Unknown attention 'auto'"):   # no choice by device any more
        with inject_motion(unet, motion, attention="auto"):
            pass


@pytest.mark.parametrize("name, backend", sorted(WEBUI_OPTIMIZERS.items()) + [(None, "plain")])
def test_the_webui_optimisation_decides_the_backend(name, backend):
    hijack = types.SimpleNamespace(current_optimizer=None if name is None else types.SimpleNamespace(name=name))
    assert current_backend(hijack) == backend
    choose_attention(backend)   # every mapped name is an engine backend


def test_an_unknown_webui_optimisation_is_refused_naming_the_setting():
    with pytest.raises(AnimLongError, match="'Flash-3'.*Settings > Optimizations > Cross attention optimization"):
        backend_for("Flash-3")
