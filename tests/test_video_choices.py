"""Issue 9 item 11: every documented video choice is reachable from the headless CLI (the webui's are in
tests/test_webui_frontend.py): GIF palette and dithering, MP4 CRF / preset / odd-size handling, WebP quality
and lossless, loop count."""
import argparse

from lib_animlong.__main__ import main
from lib_animlong.cli import render as render_cli
from lib_animlong.video import VideoSettings


def parse(argv):
    parser = argparse.ArgumentParser()
    render_cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_every_video_choice_is_a_render_flag():
    args = parse(["--gif-palette", "per-frame", "--gif-dither", "ordered", "--mp4-crf", "23", "--mp4-preset", "fast",
                  "--even-size", "crop", "--webp-quality", "55", "--webp-lossless", "--loop", "3"])
    assert render_cli.video_settings(args) == VideoSettings(
        loop=3, gif_palette="per-frame", gif_dither="ordered", mp4_crf=23, mp4_preset="fast", even_size="crop",
        webp_quality=55, webp_lossless=True)
    assert render_cli.video_settings(parse([])) == VideoSettings()


def test_a_bad_video_choice_is_refused_before_rendering(capsys):
    assert main(["render", "--quiet", "--webp-quality", "400"]) == 2
    assert "WebP quality" in capsys.readouterr().err
