"""Every kind of model file people put into a motion-module folder is named, with what to do with it
(issue 9.10): a v3 domain adapter is an image LoRA, not a MotionLoRA."""
import json

import pytest
import torch

from lib_animlong.__main__ import main
from lib_animlong.errors import AnimLongError
from lib_animlong.motion import formats, synthetic
from lib_animlong.motion.loader import load_motion_module
from lib_animlong.motion.lora import read_motion_lora

WIDTH = 32


def v3_adapter(rank=4):
    """v3_sd15_adapter's layout: LoRA pairs on the SD1.5 UNet's spatial self/cross attention, diffusers
    attention-processor names (down levels 0-2 x 2 transformers, mid, up levels 1-3 x 3)."""
    sites = [f"down_blocks.{i}.attentions.{j}" for i in range(3) for j in range(2)] + ["mid_block.attentions.0"]
    sites += [f"up_blocks.{i}.attentions.{j}" for i in range(1, 4) for j in range(3)]
    g = torch.Generator().manual_seed(0)
    state = {}
    for site in sites:
        for attn in ("attn1", "attn2"):
            for projection in ("q", "k", "v", "out"):
                prefix = f"{site}.transformer_blocks.0.{attn}.processor.to_{projection}_lora"
                state[f"{prefix}.down.weight"] = torch.randn(rank, WIDTH, generator=g)
                state[f"{prefix}.up.weight"] = torch.randn(WIDTH, rank, generator=g)
    return state


def test_the_v3_domain_adapter_is_named_with_what_to_do(tmp_path, capsys):
    path = synthetic.save({"state_dict": v3_adapter()}, str(tmp_path / "v3_sd15_adapter.ckpt"))
    with pytest.raises(AnimLongError) as refused:
        load_motion_module(path)
    message = str(refused.value)
    assert "AnimateDiff v3 domain adapter" in message and "not a motion module" in message
    assert "MotionLoRA" not in message
    assert "models/Lora" in message and "<lora:" in message
    assert main(["inspect", path]) == 2
    assert "AnimateDiff v3 domain adapter" in capsys.readouterr().err
    with pytest.raises(AnimLongError, match="not a MotionLoRA"):
        read_motion_lora(path)


def test_a_motion_lora_is_still_a_motion_lora(tmp_path):
    lora = synthetic.random_motion_lora(synthetic.sd15_spec("v2", WIDTH))
    assert formats.classify(lora).kind == "MotionLoRA"
    path = synthetic.save(lora, str(tmp_path / "v2_lora_ZoomIn.ckpt"))
    assert read_motion_lora(path).keys() == lora.keys()
    with pytest.raises(AnimLongError, match="MotionLoRA.*not a motion module.*choose a motion module"):
        load_motion_module(path)


SPARSECTRL = {"controlnet_cond_embedding.conv_in.weight": torch.zeros(16, 3, 3, 3),
              "down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight": torch.zeros(4, 4)}
KOHYA = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320),
         "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(4.0)}
CHECKPOINT = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2),
              "first_stage_model.decoder.conv_out.weight": torch.zeros(2)}
VAE = {"encoder.conv_in.weight": torch.zeros(2), "decoder.conv_out.weight": torch.zeros(2)}
CONTROLNET = {"control_model.input_hint_block.0.weight": torch.zeros(2)}


@pytest.mark.parametrize("state, kind, advice", [
    (SPARSECTRL, "SparseCtrl", "does not use SparseCtrl"), (KOHYA, "image LoRA", "models/Lora"),
    (CHECKPOINT, "checkpoint", "models/Stable-diffusion"), (VAE, "VAE", "models/VAE"),
    (CONTROLNET, "ControlNet", "ControlNet"), ({"weights": torch.zeros(2)}, "unknown", "Choose an AnimateDiff"),
    (synthetic.random_state_dict(synthetic.sd15_spec("v3", WIDTH)), "motion module", "")])
def test_each_kind_is_named_with_what_to_do(tmp_path, state, kind, advice):
    found = formats.classify(state)
    assert found.kind == kind and advice in found.advice
    if kind != "motion module":
        with pytest.raises(AnimLongError, match="not a motion module"):
            load_motion_module(synthetic.save(state, str(tmp_path / "x.safetensors")))


def test_a_textual_inversion_embedding_is_named(tmp_path):
    path = str(tmp_path / "style.pt")
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.zeros(2, 768)}, "name": "style",
                "step": 1000}, path)
    with pytest.raises(AnimLongError, match="style.pt: This file is a textual-inversion embedding.*embeddings folder"):
        load_motion_module(path)


def test_inspect_says_a_motion_module_is_one(tmp_path, capsys):
    path = synthetic.save(synthetic.random_state_dict(synthetic.sd15_spec("v2", WIDTH)), str(tmp_path / "mm.ckpt"))
    assert main(["inspect", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "motion module"
