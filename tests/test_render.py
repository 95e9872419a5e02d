"""The headless renderer: `python -m lib_animlong render` on the shipped sprite model."""
import argparse

import imageio_ffmpeg
import pytest
from PIL import Image
from safetensors.torch import save_file
import torch

from lib_animlong.__main__ import main
from lib_animlong.cli import render as render_cli
from lib_animlong.options import option_fields


def run_cli(*argv):
    return main(["render", "--quiet", *argv])


def mp4_stream(path):
    """(frames, width, height, fps) of the first video stream, read back through ffmpeg itself."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = sum(1 for _ in reader)
    return frames, meta["size"][0], meta["size"][1], meta["fps"]


def test_short_render_writes_a_gif_and_an_mp4_with_the_right_frames_size_and_rate(tmp_path, capsys):
    assert run_cli("--frames", "24", "--steps", "3", "--fps", "12", "--scale", "2", "--seed", "5",
                   "--prompt", "yellow square on gray", "--out", str(tmp_path), "--name", "clip") == 0
    gif = Image.open(tmp_path / "clip.gif")
    assert (gif.n_frames, gif.size) == (24, (64, 64))
    assert gif.info["duration"] in (80, 90)          # 12 fps in whole centiseconds
    assert mp4_stream(tmp_path / "clip.mp4") == (24, 64, 64, 12.0)
    printed = capsys.readouterr().out
    assert "24 frames of 64x64 at 12 fps" in printed and str(tmp_path / "clip.mp4") in printed


def test_every_animation_option_is_a_flag_with_its_choices():
    parser = argparse.ArgumentParser()
    render_cli.add_arguments(parser)
    flags = {a.dest: a for a in parser._actions}
    for f in option_fields():
        if f.name in render_cli.IMG2IMG_ONLY:
            assert f.name not in flags          # no init image headless, so no flag that would do nothing
            continue
        assert f.name in flags, f.name
        if f.metadata["choices"]:
            assert tuple(flags[f.name].choices) == f.metadata["choices"]
    args = parser.parse_args(["--schedule", "overlap", "--overlap", "6", "--closed-loop"])
    options = render_cli.animation_options(args)
    assert (options.frames, options.schedule, options.overlap, options.closed_loop) == (256, "overlap", 6, True)


@pytest.mark.parametrize("argv, message", [
    (["--prompt", "purple dragon"], "does not know the word 'purple'"),
    (["--context-length", "1"], "'context_length' must be at least 2"),
    (["--formats", "GIF,AVI"], "Unknown output format 'AVI'"),
    (["--steps", "0"], "--steps must be at least 1"),
])
def test_bad_input_is_refused_with_a_clear_message(argv, message, tmp_path, capsys):
    assert run_cli("--out", str(tmp_path), *argv) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_a_cuda_device_without_a_gpu_is_refused(tmp_path, capsys):
    assert run_cli("--out", str(tmp_path), "--device", "cuda") == 2
    assert "torch sees no CUDA GPU here; use --device cpu" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_stable_diffusion_checkpoint_is_refused_naming_what_is_missing(tmp_path, capsys):
    checkpoint = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}, str(checkpoint))
    assert run_cli("--checkpoint", str(checkpoint)) == 2
    err = capsys.readouterr().err
    assert "CLIP ViT-L/14 text encoder" in err and "tokenizer" in err
    assert run_cli("--checkpoint", str(tmp_path / "nothing.ckpt")) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_motion_module_for_another_unet_is_refused(tmp_path, capsys):
    from dataclasses import replace
    from lib_animlong.motion.module import MotionModuleSet
    from lib_animlong.smallmodel.config import motion_spec
    foreign = tmp_path / "mm_other.safetensors"
    other = MotionModuleSet(replace(motion_spec(), down_channels=(32, 64), up_channels=(64, 32)))
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(foreign))
    assert run_cli("--motion-module", str(foreign), "--frames", "4", "--out", str(tmp_path)) == 2
    assert "does not fit the small sprite model" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.gif"))


def test_keyframes_first_renders_in_two_passes_with_every_frame(tmp_path, monkeypatch):
    from lib_animlong.sampling import windowed
    seen = []

    class Watching(windowed.WindowedDenoiser):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.num_frames)

    monkeypatch.setattr(windowed, "WindowedDenoiser", Watching)   # render imports it at call time
    assert run_cli("--frames", "20", "--steps", "2", "--keyframes-first", "--pin-mode", "clean", "--scale", "1",
                   "--formats", "GIF", "--out", str(tmp_path)) == 0
    assert seen == [10, 20]           # 10 keyframes (stride 2 fits one 16-frame window), then all 20 frames
    assert Image.open(tmp_path / "animlong.gif").n_frames == 20
