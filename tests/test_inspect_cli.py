"""`python -m lib_animlong inspect FILE [--json]`: what a file is, or one sentence why it is refused."""
import json
import os
import re
import subprocess
import sys

import pytest
import torch

from lib_animlong.__main__ import main
from lib_animlong.motion import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPRITES = os.path.join(ROOT, "models", "sprites-motion.safetensors")
WIDTH = 32


def write(tmp_path, state, name):
    return synthetic.save(state, str(tmp_path / name))


def inspect(capsys, *args):
    """The dispatcher in-process (a subprocess per call would import torch each time): (code, out, err)."""
    code = main(["inspect", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_module_entry_point_prints_text_and_refuses_with_exit_2(tmp_path):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH)), "mm_sd_v15_v2.ckpt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    script = ("import sys; from lib_animlong.__main__ import main; "
              f"codes = [main(['inspect', {path!r}]), main(['inspect', {str(tmp_path / 'junk.safetensors')!r}])]; "
              "print(codes)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert "version             v2" in result.stdout and result.stdout.strip().endswith("[0, 2]")
    assert result.stderr.startswith("error: junk.safetensors is truncated or corrupt")
    assert "Traceback" not in result.stderr


def test_inspect_prints_text_and_json(tmp_path, capsys):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v1", WIDTH), dtype=torch.float16),
                 "mm_sd_v15.safetensors")
    code, text, _ = inspect(capsys, path)
    assert code == 0 and "SD1.5" in text and "24 frames" in text and "mid-block module    no" in text
    code, out, _ = inspect(capsys, path, "--json")
    info = json.loads(out)
    assert (info["family"], info["version"], info["pe_length"], info["has_mid"], info["dtype"]) == \
        ("SD1.5", "v1", 24, False, "float16")


def test_inspect_counts_parameters_without_the_positional_tables(tmp_path, capsys):
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH))
    path = write(tmp_path, synthetic.wrapped(state, state_dict=True, module_prefix=True), "wrapped.ckpt")
    info = json.loads(inspect(capsys, path, "--json")[1])
    assert info["parameters"] == sum(v.numel() for k, v in state.items() if not k.endswith("pos_encoder.pe"))
    assert (info["version"], info["has_mid"], info["dtype"]) == ("v2", True, "float32")


def test_inspect_reports_hotshot_xl_from_its_own_naming(tmp_path, capsys):
    path = write(tmp_path, synthetic.hotshot_state_dict(WIDTH, dtype=torch.float16), "hsxl_temporal_layers.safetensors")
    info = json.loads(inspect(capsys, path, "--json")[1])
    assert (info["family"], info["version"], info["pe_length"], info["has_mid"], info["dtype"]) == \
        ("SDXL", "HotShot-XL", 24, False, "float16")
    assert info["channels"] == [WIDTH, 2 * WIDTH, 4 * WIDTH]
    text = inspect(capsys, path)[1]
    assert "HotShot-XL" in text and "24 frames" in text


def test_a_bad_hotshot_key_is_named_as_the_file_names_it(tmp_path, capsys):
    state = synthetic.hotshot_state_dict(WIDTH)
    key = "down_blocks.1.temporal_attentions.0.proj_in.weight"
    state[key] = torch.zeros(2, 2)
    code, _, err = inspect(capsys, write(tmp_path, state, "hsxl.safetensors"))
    assert code == 2 and f"key '{key}' has shape (2, 2)" in err


def test_inspect_reads_our_small_models_motion_module(capsys):
    info = json.loads(inspect(capsys, SPRITES, "--json")[1])
    assert (info["family"], info["version"]) == ("custom", "custom")
    assert len(info["channels"]) == 2


@pytest.mark.parametrize("state, message", [
    ({"model.diffusion_model.out.2.weight": torch.zeros(4, 320, 3, 3)}, "not a motion module.*Stable-diffusion"),
    ({"noise": torch.randn(8, 8)}, "not a motion module"),
])
def test_inspect_refuses_files_that_are_not_motion_modules(tmp_path, capsys, state, message):
    code, out, err = inspect(capsys, write(tmp_path, state, "x.safetensors"))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert re.search(message, err)


def test_inspect_refuses_a_motion_lora_and_a_missing_file(tmp_path, capsys):
    lora = write(tmp_path, synthetic.random_motion_lora(synthetic.sd15_spec("v2", WIDTH)), "v2_lora_ZoomIn.ckpt")
    assert "MotionLoRA, not a motion module" in inspect(capsys, lora)[2]
    code, _, err = inspect(capsys, str(tmp_path / "absent.safetensors"))
    assert code == 2 and "not found" in err
