"""`python -m lib_animlong inspect FILE [--json]`: what a file is, or one sentence why it is refused."""
import json
import os
import subprocess
import sys

import torch

from lib_animlong.motion import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH = 32


def write(tmp_path, state, name):
    return synthetic.save(state, str(tmp_path / name))


def run_inspect(*args):
    return subprocess.run([sys.executable, "-m", "lib_animlong", "inspect", *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_inspect_prints_text_and_json(tmp_path):
    path = write(tmp_path, synthetic.random_state_dict(synthetic.sd15_spec("v1", WIDTH), dtype=torch.float16),
                 "mm_sd_v15.safetensors")
    text = run_inspect(path)
    assert text.returncode == 0 and "SD1.5" in text.stdout and "24 frames" in text.stdout
    info = json.loads(run_inspect(path, "--json").stdout)
    assert (info["family"], info["version"], info["pe_length"], info["has_mid"], info["dtype"]) == \
        ("SD1.5", "v1", 24, False, "float16")


def test_inspect_refuses_bad_files_with_one_sentence(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    result = run_inspect(str(tmp_path / "junk.safetensors"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: junk.safetensors is truncated or corrupt")
    assert "Traceback" not in result.stderr


def test_inspect_reports_hotshot_xl_from_its_own_naming(tmp_path):
    path = write(tmp_path, synthetic.hotshot_state_dict(WIDTH, dtype=torch.float16), "hsxl_temporal_layers.safetensors")
    info = json.loads(run_inspect(path, "--json").stdout)
    assert (info["family"], info["version"], info["pe_length"], info["has_mid"], info["dtype"]) == \
        ("SDXL", "HotShot-XL", 24, False, "float16")
    assert info["channels"] == [WIDTH, 2 * WIDTH, 4 * WIDTH]
    text = run_inspect(path).stdout
    assert "HotShot-XL" in text and "24 frames" in text


def test_inspect_refuses_an_sd_checkpoint(tmp_path):
    path = write(tmp_path, {"model.diffusion_model.out.2.weight": torch.zeros(4, 320, 3, 3)}, "sd15.safetensors")
    result = run_inspect(path)
    assert result.returncode == 2 and "not a motion module" in result.stderr and "Stable-diffusion" in result.stderr
