"""Our temporal transformer against an independent implementation: diffusers' sub-modules recomposed
with the per-frame GroupNorm of SD1.5 AnimateDiff (diffusers' own block normalises across frames)."""
import os

import pytest
import torch

from lib_animlong.motion import synthetic
from lib_animlong.motion.attention import plain_attention
from lib_animlong.motion.call import MotionCall
from lib_animlong.motion.loader import load_motion_module
from lib_animlong.motion.module import TemporalTransformer
from lib_animlong.motion.synthetic import randomize_

os.environ.setdefault("HF_HUB_OFFLINE", "1")
diffusers_motion = pytest.importorskip("diffusers.models.unets.unet_motion_model")

CHANNELS, TABLE = 64, 8


def diffusers_twin(ours: TemporalTransformer, channels: int = CHANNELS, table: int = TABLE) -> torch.nn.Module:
    twin = diffusers_motion.AnimateDiffTransformer3D(
        num_attention_heads=8, attention_head_dim=channels // 8, in_channels=channels, norm_num_groups=32,
        activation_fn="geglu", attention_bias=False, double_self_attention=True,
        positional_embeddings="sinusoidal", num_positional_embeddings=table)
    renamed = {}
    for key, value in ours.state_dict().items():
        if "pos_encoder" in key:
            continue
        key = (key.replace(".norms.0", ".norm1").replace(".norms.1", ".norm2").replace(".ff_norm", ".norm3")
               .replace(".attention_blocks.0", ".attn1").replace(".attention_blocks.1", ".attn2"))
        renamed[key] = value
    result = twin.load_state_dict(renamed, strict=False)
    # diffusers computes its own sinusoid table: an independent check of ours
    assert result.missing_keys == ["transformer_blocks.0.pos_embed.pe"] and not result.unexpected_keys
    return twin.eval()


def reference_forward(twin, x, frames):
    """diffusers' forward with the SD1.5 per-frame GroupNorm."""
    rows, channels, height, width = x.shape
    videos = rows // frames
    h = twin.norm(x)  # statistics of one frame only
    h = h.reshape(videos, frames, channels, height, width).permute(0, 3, 4, 1, 2)
    h = twin.proj_in(h.reshape(videos * height * width, frames, channels))
    for block in twin.transformer_blocks:
        h = block(hidden_states=h)
    h = twin.proj_out(h).reshape(videos, height, width, frames, channels).permute(0, 3, 4, 1, 2)
    return h.reshape(rows, channels, height, width) + x


@pytest.mark.parametrize("videos, frames", [(1, 1), (1, TABLE), (3, 5), (2, TABLE)])
def test_matches_diffusers_recomposed_per_frame(videos, frames):
    ours = randomize_(TemporalTransformer(CHANNELS, TABLE), seed=frames).eval()
    twin = diffusers_twin(ours)
    x = torch.randn(videos * frames, CHANNELS, 3, 4)
    with torch.no_grad():
        expected = reference_forward(twin, x, frames)
        got = ours(x, MotionCall(frames=frames))
    assert relative_error(got, expected) <= 1e-5
    assert (got - x).abs().max() > 1e-2  # the module did something: random proj_out and norms


def relative_error(got, expected) -> float:
    return ((got - expected).abs().max() / expected.abs().max()).item()


def test_plain_attention_matches_too():
    ours = randomize_(TemporalTransformer(CHANNELS, TABLE), seed=11).eval()
    twin = diffusers_twin(ours)
    for module in ours.modules():
        if hasattr(module, "attention"):
            module.attention = plain_attention
    x = torch.randn(2 * 4, CHANNELS, 2, 3)
    with torch.no_grad():
        assert relative_error(ours(x, MotionCall(frames=4)), reference_forward(twin, x, 4)) <= 1e-5


@pytest.mark.parametrize("videos, frames", [(1, 1), (2, TABLE)])
def test_sdxl_beta_cross_frame_norm_matches_diffusers_own_forward(videos, frames):
    """The SDXL beta family normalises over all frames of a clip, which is exactly diffusers' block."""
    ours = randomize_(TemporalTransformer(CHANNELS, TABLE, norm_across_frames=True), seed=7).eval()
    twin = diffusers_twin(ours)
    x = torch.randn(videos * frames, CHANNELS, 3, 2) * torch.linspace(0.2, 3, videos * frames).view(-1, 1, 1, 1)
    with torch.no_grad():
        assert relative_error(ours(x, MotionCall(frames=frames)), twin(x, num_frames=frames)) <= 1e-5


def test_a_module_loaded_from_a_file_matches(tmp_path):
    """Loader + module together: a v2 file's up-block module against diffusers built from the file's keys."""
    width, prefix = 32, "up_blocks.2.motion_modules.2.temporal_transformer."  # that level: 2 * width channels
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2", width), seed=5)
    loaded = load_motion_module(synthetic.save(state, str(tmp_path / "mm.safetensors")))
    ours = loaded.motion.up_blocks[2].motion_modules[2].temporal_transformer
    reference = TemporalTransformer(2 * width, 32)
    reference.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    twin = diffusers_twin(reference, 2 * width, 32)
    x = torch.randn(2 * 32, 2 * width, 2, 2)
    with torch.no_grad():
        assert relative_error(ours(x, MotionCall(frames=32)), reference_forward(twin, x, 32)) <= 1e-5


def test_diffusers_own_block_normalises_across_frames_and_differs():
    """Guards the reference: diffusers' forward (cross-frame GroupNorm) is not what SD1.5 modules do."""
    ours = randomize_(TemporalTransformer(CHANNELS, TABLE), seed=3).eval()
    twin = diffusers_twin(ours)
    x = torch.randn(2 * 6, CHANNELS, 3, 4) * torch.linspace(0.2, 3, 12).view(12, 1, 1, 1)
    with torch.no_grad():
        cross_frame = twin(x, num_frames=6)
        per_frame = ours(x, MotionCall(frames=6))
    assert (cross_frame - per_frame).abs().max() > 1e-2
