"""`inspect` of a .safetensors file reads its header only, without torch (issue 12: it answers in well
under a second), and says exactly what reading the tensors with torch says: the same description, the
same refusal, for every kind of file the other tests build."""
import json
import os
import subprocess
import sys

import pytest
import torch

from lib_animlong.cli.inspect import describe
from lib_animlong.errors import AnimLongError
from lib_animlong.motion import synthetic
from lib_animlong.motion.header import DTYPES, read_header
from lib_animlong.motion.module import MotionModuleSet
from lib_animlong.motion.spec import MotionSpec, layout_shapes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPRITES = os.path.join(ROOT, "models", "sprites-motion.safetensors")
WIDTH = 32
CUSTOM = MotionSpec(family="SD1.5", version="custom", down_channels=(32, 64), down_per_level=1,
                    up_channels=(64, 32), up_per_level=2, mid_channels=None, pe_length=16)
SPECS = {"v1": synthetic.sd15_spec("v1", WIDTH), "v2": synthetic.sd15_spec("v2", WIDTH),
         "v3": synthetic.sd15_spec("v3", WIDTH), "AnimateLCM": synthetic.sd15_spec("AnimateLCM", WIDTH),
         "LongAnimateDiff": synthetic.sd15_spec("LongAnimateDiff", WIDTH), "SDXL": synthetic.sdxl_spec(WIDTH),
         "HotShot-XL": synthetic.hotshot_spec(WIDTH), "custom": CUSTOM}


@pytest.mark.parametrize("name", SPECS)
def test_the_layout_without_torch_is_the_module_sets_state_dict(name):
    spec = SPECS[name]
    with torch.device("meta"):
        state = MotionModuleSet(spec).state_dict()
    assert list(layout_shapes(spec).items()) == [(key, tuple(value.shape)) for key, value in state.items()]


def test_every_dtype_is_named_as_torch_names_it():
    from safetensors.torch import _TYPES
    assert DTYPES == {code: str(dtype).replace("torch.", "") for code, dtype in _TYPES.items()}


def _v3_adapter():
    state = {}
    for site in ("down_blocks.0.attentions.0", "mid_block.attentions.0"):
        prefix = f"{site}.transformer_blocks.0.attn1.processor.to_q_lora"
        state[f"{prefix}.down.weight"], state[f"{prefix}.up.weight"] = torch.randn(4, WIDTH), torch.randn(WIDTH, 4)
    return state


def _with(state, key, value=None):
    state = dict(state)
    if value is None:
        del state[key]
    else:
        state[key] = value
    return state


V2 = synthetic.random_state_dict(SPECS["v2"])
PE = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"
STATES = {
    **{f"motion module {name}": synthetic.random_state_dict(spec) for name, spec in SPECS.items()},
    "v1 float16": synthetic.random_state_dict(SPECS["v1"], dtype=torch.float16),
    "v3 bfloat16": synthetic.random_state_dict(SPECS["v3"], dtype=torch.bfloat16),
    "mixed dtypes": _with(V2, PE, V2[PE].half()),
    "HotShot-XL naming": synthetic.hotshot_state_dict(WIDTH, dtype=torch.float16),
    "module. prefix": synthetic.wrapped(V2, module_prefix=True),
    "MotionLoRA": synthetic.random_motion_lora(SPECS["v2"]),
    "v3 domain adapter": _v3_adapter(),
    "SparseCtrl": {"controlnet_cond_embedding.conv_in.weight": torch.zeros(16, 3, 3, 3),
                   "down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight": torch.zeros(4, 4)},
    "image LoRA": {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320),
                   "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(4.0)},
    "checkpoint": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2),
                   "first_stage_model.decoder.conv_out.weight": torch.zeros(2)},
    "VAE": {"encoder.conv_in.weight": torch.zeros(2), "decoder.conv_out.weight": torch.zeros(2)},
    "ControlNet": {"control_model.input_hint_block.0.weight": torch.zeros(2)},
    "embedding": {"emb_params": torch.zeros(2, 768)},
    "unknown": {"noise": torch.randn(8, 8)},
    "no tensors": {},
    "a key missing": _with(V2, "up_blocks.3.motion_modules.2.temporal_transformer.proj_out.bias"),
    "a wrong shape": _with(V2, "down_blocks.1.motion_modules.0.temporal_transformer.proj_in.weight", torch.zeros(2, 2)),
    "an extra key": _with(V2, "down_blocks.0.motion_modules.0.temporal_transformer.extra.weight", torch.zeros(2)),
    "a stray key": _with(V2, "conv_in.weight", torch.zeros(2)),
    "a level missing": {k: v for k, v in V2.items() if not k.startswith("down_blocks.1.")},
    "a bad HotShot key": _with(synthetic.hotshot_state_dict(WIDTH), "down_blocks.1.temporal_attentions.0.proj_in.weight",
                               torch.zeros(2, 2)),
}

MOTION_MODULES = {kind for kind in STATES if kind.startswith("motion module ")} | {
    "v1 float16", "v3 bfloat16", "mixed dtypes", "HotShot-XL naming", "module. prefix"}


def _answer(path, header_only):
    """describe()'s dict, or the refusal's message."""
    try:
        return describe(path, header_only=header_only)
    except AnimLongError as error:
        return f"refused: {error}"


def _both(path):
    return _answer(path, True), _answer(path, False)


@pytest.mark.parametrize("kind", STATES)
def test_the_header_answers_as_torch_does(tmp_path, kind):
    path = synthetic.save(STATES[kind], str(tmp_path / "file.safetensors"))
    header, full = _both(path)
    assert header == full
    assert isinstance(full, dict) == (kind in MOTION_MODULES)


def test_the_sprite_models_module_reads_the_same(tmp_path):
    header, full = _both(SPRITES)
    assert header == full and header["version"] == "custom"


def _damaged(tmp_path):
    path = synthetic.save(V2, str(tmp_path / "good.safetensors"))
    data = open(path, "rb").read()
    files = {"the first half": data[: len(data) // 2], "the first 1 KiB": data[:1024], "zero bytes": b"",
             "64 zero bytes": b"\x00" * 64, "a header that is not JSON": b"\x10\x00\x00\x00\x00\x00\x00\x00{not json",
             "a header length past the end": (10 ** 9).to_bytes(8, "little") + b"{}"}
    paths = {}
    for name, content in files.items():
        paths[name] = str(tmp_path / f"{name.replace(' ', '_')}.safetensors")
        with open(paths[name], "wb") as handle:
            handle.write(content)
    return paths


def test_damaged_and_missing_files_are_refused_in_the_same_words(tmp_path):
    paths = {**_damaged(tmp_path), "missing": str(tmp_path / "absent.safetensors")}
    for name, path in paths.items():
        header, full = _both(path)
        assert header == full and header.startswith("refused: "), name
        assert ("not found" if name == "missing" else "truncated or corrupt") in header, name


def test_a_dtype_without_a_torch_name_here_falls_back_to_torch(tmp_path, monkeypatch):
    path = synthetic.save(V2, str(tmp_path / "mm.safetensors"))
    monkeypatch.delitem(DTYPES, "F32")
    assert read_header(path) is None
    assert describe(path) == describe(path, header_only=False)


def test_inspect_of_a_safetensors_file_never_imports_torch(tmp_path):
    good = synthetic.save(synthetic.random_state_dict(SPECS["v1"], dtype=torch.float16), str(tmp_path / "mm.safetensors"))
    lora = synthetic.save(STATES["MotionLoRA"], str(tmp_path / "v2_lora_ZoomIn.safetensors"))
    broken = _damaged(tmp_path)["the first half"]
    script = (
        "import sys, json; from lib_animlong.__main__ import main\n"
        f"codes = [main(['inspect', {good!r}]), main(['inspect', {good!r}, '--json']), main(['inspect', {lora!r}]),"
        f" main(['inspect', {broken!r}]), main(['inspect', {str(tmp_path / 'absent.safetensors')!r}])]\n"
        "print(json.dumps({'codes': codes, 'torch': sorted(m for m in sys.modules if m.split('.')[0] == 'torch')}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"codes": [0, 0, 2, 2, 2], "torch": []}, result.stderr
    assert "AnimateDiff motion module" in result.stdout and '"version": "v1"' in result.stdout
    assert "MotionLoRA, not a motion module" in result.stderr and "truncated or corrupt" in result.stderr
