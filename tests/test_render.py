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
    (["--context-length", "1"], "--context-length must be at least 2"),
    (["--schedule", "overlap", "--overlap", "16"], "--overlap (16) must be smaller than --context-length (16)"),
    (["--context-length", "40"], "--context-length (40) is longer than this motion module's positional table"),
    (["--prompt", "0: red circle on black\n300: blue square"], "frame 300 is past the last frame (255"),
    (["--prompt", "0: red circle\n8: purple circle"], "keyframe 8 ('purple circle'): The small sprite model does "
                                                       "not know the word 'purple'"),
    (["--formats", "GIF,AVI"], "Unknown output format 'AVI'"),
    (["--steps", "0"], "--steps must be at least 1"),
])
def test_bad_input_is_refused_with_a_clear_message(argv, message, tmp_path, capsys, monkeypatch):
    from lib_animlong import render
    monkeypatch.setattr(render, "sample_latents", no_sampling)
    assert run_cli("--out", str(tmp_path), *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Option '" not in err      # the flag the user typed, not the API field
    assert not list(tmp_path.iterdir())


def no_sampling(*args, **kwargs):
    raise AssertionError("sampling started although the input should have been refused before")


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


def tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ctrl_c_ends_with_one_line_and_status_130_and_keeps_the_earlier_result(tmp_path, capsys, monkeypatch):
    from lib_animlong import video
    short = ("--frames", "6", "--steps", "1", "--scale", "1", "--formats", "GIF,PNG", "--out", str(tmp_path))
    assert run_cli(*short) == 0
    before = tree(tmp_path)
    assert sorted(before) == ["animlong-frames/animlong-00000.png", "animlong-frames/animlong-00001.png",
                              "animlong-frames/animlong-00002.png", "animlong-frames/animlong-00003.png",
                              "animlong-frames/animlong-00004.png", "animlong-frames/animlong-00005.png",
                              "animlong.gif"]
    capsys.readouterr()
    real = video._write_png_frames

    def interrupted(frames, folder, *args):        # Ctrl-C after 3 of the 6 PNG frames
        real(frames[:3], folder, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(video, "_write_png_frames", interrupted)
    assert run_cli(*short, "--seed", "7") == 130
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err and "Traceback" not in err
    assert tree(tmp_path) == before   # the new GIF was complete, but the set is published only whole


def test_an_output_folder_that_cannot_be_written_is_refused_before_sampling(tmp_path, capsys, monkeypatch):
    from lib_animlong import render
    monkeypatch.setattr(render, "sample_latents", no_sampling)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert run_cli("--out", str(blocker / "out"), "--frames", "4") == 2
    err = capsys.readouterr().err
    assert "--out" in err and str(blocker / "out") in err and "writable" in err


def test_advice_fits_the_case(tmp_path, capsys):
    assert run_cli("--prompt", "purple dragon", "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "does not know the word 'purple'" in err and "--checkpoint" not in err
    assert "AUTOMATIC1111" in err                   # where real checkpoints do render
    missing = tmp_path / "motion_modules" / "mm_missing.safetensors"
    assert run_cli("--motion-module", str(missing), "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"--motion-module {missing}: no such file" in err and "Put it in" not in err


def test_prompt_travel_gives_each_frame_its_blend_of_the_keyframes(tmp_path, monkeypatch):
    from lib_animlong import render
    from lib_animlong.smallmodel.weights import load_image_model
    seen = {}
    real = render.sample_latents

    def watching(unet, motion, cond, uncond, *args, **kwargs):
        seen["cond"], seen["uncond"] = cond, uncond
        return real(unet, motion, cond, uncond, *args, **kwargs)

    monkeypatch.setattr(render, "sample_latents", watching)
    assert run_cli("--prompt", "0: red circle on black\n8: blue square on black", "--frames", "12", "--steps", "1",
                   "--scale", "1", "--formats", "GIF", "--out", str(tmp_path)) == 0
    _, embedding = load_image_model()
    red, blue, empty = embedding.encode(["red circle on black", "blue square on black", ""])
    cond = seen["cond"]
    assert cond.shape == (12, 3, 32)
    assert torch.equal(cond[0], red) and torch.equal(cond[8], blue) and torch.equal(cond[11], blue)
    # in between: a blend, moving away from red towards blue frame by frame
    to_red = [float((cond[i] - red).norm()) for i in range(9)]
    assert to_red == sorted(to_red) and 0 < to_red[4] < float((blue - red).norm())
    assert all(torch.equal(row, empty) for row in seen["uncond"])


def test_frames_64_with_context_32_is_fitted_to_the_positional_table_before_work(tmp_path, capsys, monkeypatch):
    from lib_animlong import render
    used = {}
    real = render.sample_latents

    def watching(unet, motion, cond, uncond, alphas, shape, options, *args, **kwargs):
        used["options"] = options
        return real(unet, motion, cond, uncond, alphas, shape, options, *args, **kwargs)

    monkeypatch.setattr(render, "sample_latents", watching)
    assert run_cli("--frames", "64", "--context-length", "32", "--steps", "1", "--scale", "1", "--formats", "GIF",
                   "--out", str(tmp_path)) == 0
    options = used["options"]
    # 32 own frames fill the sprite module's 32 positions: no room for references with unique positions
    assert (options.context_length, options.references) == (32, "none")
    assert "note: --references none instead of previous+anchors" in capsys.readouterr().err
    assert Image.open(tmp_path / "animlong.gif").n_frames == 64


def test_ancestral_noise_of_a_frame_does_not_depend_on_the_frame_count(tmp_path, monkeypatch):
    from lib_animlong import kdiffusion
    sampling, _ = kdiffusion.load()
    drawn = {}

    def fake_sampler(model, x, sigmas, noise_sampler=None, **kwargs):
        drawn[x.shape[0]] = [noise_sampler(sigmas[i], sigmas[i + 1]) for i in range(3)]
        return x

    monkeypatch.setattr(sampling, "sample_euler_ancestral", fake_sampler)
    for frames in ("16", "32"):
        assert run_cli("--sampler", "euler_ancestral", "--frames", frames, "--steps", "3", "--scale", "1",
                       "--formats", "GIF", "--out", str(tmp_path)) == 0
    for short, long in zip(drawn[16], drawn[32]):
        assert short.shape == (16, 12, 16, 16) and torch.equal(short, long[:16])
    assert not torch.equal(drawn[32][0][16:], drawn[32][1][16:])   # fresh noise at every step


def test_the_progress_bar_counts_steps_with_an_eta(tmp_path, capsys):
    assert main(["render", "--frames", "4", "--steps", "2", "--scale", "1", "--formats", "GIF",
                 "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "denoising" in err and "2/2" in err and "<" in err     # tqdm: [elapsed<remaining, rate]


def test_help_and_inspect_do_not_import_torch_before_they_need_it():
    import subprocess
    import sys
    code = ("import sys\nfrom lib_animlong.__main__ import main\n"
            "try:\n    main(['render', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'lib_animlong.render' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage:" in done.stdout and done.stdout.strip().endswith("False False")


def test_the_thread_governor_leaves_the_cores_other_programs_use():
    from lib_animlong.render import ThreadGovernor
    now, busy, own, chosen = [0.0], [0.0], [0.0], []
    governor = ThreadGovernor(2, read=lambda: (busy[0], own[0]), clock=lambda: now[0], interval=1.0,
                              set_threads=chosen.append)
    assert governor.update() == 1 and chosen == [1]   # starts safe, before it has measured anything

    def second(ours, others):
        now[0] += 1.0
        own[0] += ours
        busy[0] += ours + others
        return governor.update()

    assert second(2.0, 0.0) == 2              # idle machine: both cores
    assert second(1.0, 1.0) == 1              # a busy program holds a core: one thread
    assert second(0.5, 1.5) == 1              # heavy load: never fewer than one
    now[0] += 0.5
    busy[0] += 0.0
    assert governor.update() == 1             # within the interval: not re-read
    assert second(1.0, 0.1) == 2              # the other program stopped
    assert chosen == [1, 2, 1, 2]


@pytest.mark.parametrize("bench", ["bench_load", "bench_perf"])
def test_benchmarks_write_to_out_unless_told_to_update(bench, tmp_path, monkeypatch):
    import importlib
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root / "benchmarks"))
    module = importlib.import_module(bench)
    results = sys.modules["results"]
    tracked = tmp_path / "RESULTS.md"
    tracked.write_text("# Benchmark results\n\n## Performance\n\nOLD-FIGURES\n\n## Motion-module loading\n\nOLD-FIGURES\n")
    monkeypatch.setattr(results, "PATH", str(tracked))
    monkeypatch.setattr(module, "OUT", str(tmp_path / "out" / "RESULTS.md"))
    if bench == "bench_load":        # the measuring itself is not what this test is about
        monkeypatch.setattr(module, "write_files", lambda folder: {"safetensors": __file__, "ckpt": __file__})
        monkeypatch.setattr(module, "run_case", lambda path, cached: dict(
            first_s=1.0, rss_before_mib=1, rss_after_mib=2, rss_touched_mib=3, peak_mib=4))
        run, section = (lambda *flags: module.main(update="--update" in flags)), "## Motion-module loading"
    else:
        for name in ("cost_table", "engine_overhead"):
            monkeypatch.setattr(module, name, lambda *a, **k: "| figures |")
        monkeypatch.setattr(module, "wall_time", lambda repeats: "| figures |")
        monkeypatch.setattr(module, "memory_table", lambda *a, **k: "| figures |")
        run, section = (lambda *flags: module.main(["--quick", *flags])), "## Performance"
    run()
    assert tracked.read_text().count("OLD-FIGURES") == 2                 # the tracked file is untouched
    written = (tmp_path / "out" / "RESULTS.md").read_text()
    assert section in written and "OLD-FIGURES" not in written
    run("--update")
    text = tracked.read_text()
    assert text.count("OLD-FIGURES") == 1 and section + "\n\nOLD-FIGURES" not in text   # only its own section replaced


def test_the_cli_defaults_are_the_renderers():
    from lib_animlong import render
    parser = argparse.ArgumentParser()
    render_cli.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.sampler, args.steps) == (render.DEFAULT_SAMPLER, render.DEFAULT_STEPS)
    assert render_cli.SAMPLER_CHOICES == tuple(render.SAMPLERS)
    settings = render.RenderSettings()
    assert (settings.sampler, settings.steps) == (args.sampler, args.steps)
