"""Video writers, checked by decoding the files back (Pillow for GIF / WebP / PNG, ffmpeg for MP4)."""
import base64
import os
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageSequence

from lib_animlong.errors import AnimLongError
from lib_animlong.video import VideoSettings, encode_base64, frame_durations_ms, save_video

PARAMS = "a cat walking, best quality\nSteps: 20, Sampler: Euler a, Seed: 1, AnimLong frames: 12"


def moving_square(num_frames=12, width=33, height=21):
    """Distinct frames (no two consecutive identical) on a soft background; odd size on purpose."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(num_frames):
        frame = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 60)], -1).astype(np.uint8)
        frame[5:12, 2 + 2 * t:9 + 2 * t] = (250, 250, 250)
        frames.append(frame)
    return frames


def drifting_gradient(num_frames=24, width=96, height=64):
    """A smooth two-colour vertical gradient whose colours drift over the video (a sunset)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(num_frames):
        s = t / (num_frames - 1)
        top, bottom = np.array([20 + 200 * s, 40, 120 - 80 * s]), np.array([250, 180 - 100 * s, 60 + 100 * s])
        a = (y / height)[..., None]
        image = top * (1 - a) + bottom * a + (x / width)[..., None] * np.array([0, 30, 0])
        frames.append(image.round().clip(0, 255).astype(np.uint8))
    return frames


def colour_cube_video(num_frames=16, width=64, height=48):
    """Every frame a different slice of the RGB cube: no single 256-colour palette fits all frames."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(num_frames):
        phase = t / num_frames * 2 * np.pi
        r = 127.5 + 127.5 * np.sin(x / width * 2 * np.pi + phase)
        b = 127.5 + 127.5 * np.cos(x / width * 2 * np.pi - phase + y / height)
        frames.append(np.stack([r, y / height * 255, b], -1).round().clip(0, 255).astype(np.uint8))
    return frames


def decode_gif(path):
    with Image.open(path) as im:
        frames = [np.asarray(f.convert("RGB"), dtype=np.float32) for f in ImageSequence.Iterator(im)]
    return frames


def mean_error(decoded, frames):
    return [float(np.abs(d - f.astype(np.float32)).mean()) for d, f in zip(decoded, frames)]


def blurred_error(decoded, frames, k=8):
    """Error after averaging k x k blocks: dithering noise averages out, banding does not."""
    def blur(a):
        h, w = a.shape[0] // k * k, a.shape[1] // k * k
        return a[:h, :w].reshape(h // k, k, w // k, k, 3).mean((1, 3))
    return float(np.mean([np.abs(blur(d) - blur(f.astype(np.float32))).mean() for d, f in zip(decoded, frames)]))


def gif_of(frames, tmp_path, name, **settings):
    return save_video(frames, str(tmp_path), name, formats=["GIF"], settings=VideoSettings(**settings))["GIF"]


# ---- GIF ------------------------------------------------------------------------------------------------

def test_gif_frames_size_timing_loop_and_comment(tmp_path):
    frames = moving_square()
    path = save_video(frames, str(tmp_path), "clip", formats=["gif"], fps=8, params_text=PARAMS)["GIF"]
    assert path == os.path.join(str(tmp_path), "clip.gif")
    with Image.open(path) as im:
        assert im.size == (33, 21)
        assert im.n_frames == 12
        assert im.info["loop"] == 0
        assert im.info["comment"].decode("utf-8") == PARAMS
        durations = [f.info["duration"] for f in ImageSequence.Iterator(im)]
    assert sum(durations) == 1500  # 12 frames at 8 fps
    assert set(durations) == {120, 130}
    decoded = decode_gif(path)
    assert max(mean_error(decoded, frames)) < 12


def test_gif_loop_count_is_written(tmp_path):
    with Image.open(gif_of(moving_square(4), tmp_path, "thrice", loop=3)) as im:
        assert im.info["loop"] == 3


def test_frame_durations_keep_the_average_rate():
    gif = frame_durations_ms(24, 8, unit_ms=10)
    assert all(d % 10 == 0 for d in gif) and sum(gif) == 3000
    assert sum(frame_durations_ms(30, 24)) == 1250
    assert min(frame_durations_ms(60, 60, unit_ms=10, minimum_ms=20)) == 20


def test_global_palette_fits_every_frame_of_a_drifting_video(tmp_path):
    frames = drifting_gradient()
    ours = mean_error(decode_gif(gif_of(frames, tmp_path, "global")), frames)
    first_frame_palette = Image.fromarray(frames[0]).quantize(256, method=Image.Quantize.MEDIANCUT)
    naive = [np.asarray(Image.fromarray(f).quantize(palette=first_frame_palette).convert("RGB"), dtype=np.float32)
             for f in frames]
    naive_error = mean_error(naive, frames)
    assert max(ours) < 6
    assert naive_error[-1] > 5 * max(ours)


def test_floyd_steinberg_removes_banding(tmp_path):
    frames = drifting_gradient()
    banded = blurred_error(decode_gif(gif_of(frames, tmp_path, "none", gif_dither="none")), frames)
    dithered = blurred_error(decode_gif(gif_of(frames, tmp_path, "fs", gif_dither="floyd-steinberg")), frames)
    assert dithered < 0.7 * banded


def test_ordered_dithering_does_not_add_banding(tmp_path):
    frames = drifting_gradient()
    plain = decode_gif(gif_of(frames, tmp_path, "none", gif_dither="none"))
    ordered = decode_gif(gif_of(frames, tmp_path, "ordered", gif_dither="ordered"))
    assert len(ordered) == len(frames)
    assert any(np.any(a != b) for a, b in zip(plain, ordered))
    assert blurred_error(ordered, frames) <= blurred_error(plain, frames)


def test_ordered_dithering_keeps_unchanged_pixels_still(tmp_path):
    background = drifting_gradient(2)[0]
    frames = []
    for t in range(3):  # a small square moves over a still gradient
        frame = background.copy()
        frame[4:12, 4 + 4 * t:12 + 4 * t] = (250, 250, 250)
        frames.append(frame)
    unchanged = np.all(frames[0] == frames[1], axis=-1)
    ordered = decode_gif(gif_of(frames, tmp_path, "ordered", gif_dither="ordered"))
    diffused = decode_gif(gif_of(frames, tmp_path, "fs", gif_dither="floyd-steinberg"))
    assert np.array_equal(ordered[0][unchanged], ordered[1][unchanged])
    assert not np.array_equal(diffused[0][unchanged], diffused[1][unchanged])  # error diffusion crawls


def test_per_frame_palette_adapts_to_each_frame(tmp_path):
    frames = colour_cube_video()
    shared = mean_error(decode_gif(gif_of(frames, tmp_path, "g", gif_dither="none")), frames)
    own = mean_error(decode_gif(gif_of(frames, tmp_path, "p", gif_dither="none", gif_palette="per-frame")), frames)
    assert len(own) == len(frames)
    assert np.mean(own) < 0.8 * np.mean(shared)


# ---- MP4 ------------------------------------------------------------------------------------------------

def mp4_meta(path):
    reader = imageio_ffmpeg.read_frames(path)
    meta = next(reader)
    decoded = [np.frombuffer(b, np.uint8).reshape(meta["size"][1], meta["size"][0], 3) for b in reader]
    return meta, decoded


def top_level_boxes(path):
    boxes, data = [], open(path, "rb").read()
    at = 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        boxes.append(data[at + 4:at + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[at + 8:at + 16], "big")
        if size < 8:
            break
        at += size
    return boxes


def test_mp4_is_h264_yuv420p_even_sized_faststart_with_comment(tmp_path):
    frames = moving_square()
    path = save_video(frames, str(tmp_path), "clip", formats=["MP4"], fps=12, params_text=PARAMS)["MP4"]
    meta, decoded = mp4_meta(path)
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == 12
    assert meta["size"] == (34, 22)  # 33x21 padded by one pixel each way
    assert imageio_ffmpeg.count_frames_and_secs(path) == (12, 1.0)
    assert len(decoded) == 12
    for original, got in zip(frames, decoded):
        assert np.abs(got[:21, :33].astype(int) - original).mean() < 8
        # the padding repeats the edge instead of adding a black line
        assert np.abs(got[:, 33].astype(int) - got[:, 32]).mean() < 8
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")
    dump = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", path, "-f", "ffmetadata", "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "comment=a cat walking, best quality" in dump and "Seed: 1, AnimLong frames: 12" in dump


def test_mp4_crop_mode_and_crf(tmp_path):
    frames = moving_square()
    fine = save_video(frames, str(tmp_path), "fine", formats=["MP4"], settings=VideoSettings(mp4_crf=10))["MP4"]
    coarse = save_video(frames, str(tmp_path), "coarse", formats=["MP4"],
                        settings=VideoSettings(mp4_crf=40, even_size="crop"))["MP4"]
    assert mp4_meta(coarse)[0]["size"] == (32, 20)
    assert os.path.getsize(coarse) < os.path.getsize(fine)


# ---- WebP and PNG ---------------------------------------------------------------------------------------

def test_webp_frames_timing_loop_and_exif_parameters(tmp_path):
    frames = moving_square()
    path = save_video(frames, str(tmp_path), "clip", formats=["WebP"], fps=10, params_text=PARAMS,
                      settings=VideoSettings(webp_lossless=True, loop=2))["WEBP"]
    with Image.open(path) as im:
        assert im.size == (33, 21) and im.n_frames == 12
        assert im.info["loop"] == 2
        user_comment = im.getexif().get_ifd(0x8769)[0x9286]
        decoded, durations = [], []
        for frame in ImageSequence.Iterator(im):
            decoded.append(np.asarray(frame.convert("RGB")))
            durations.append(frame.info["duration"])
    assert user_comment[:8] == b"UNICODE\0" and user_comment[8:].decode("utf-16-be") == PARAMS
    assert durations == [100] * 12
    assert all(np.array_equal(d, f) for d, f in zip(decoded, frames))  # lossless


def test_webp_lossy_quality(tmp_path):
    frames = moving_square()
    low = save_video(frames, str(tmp_path), "low", formats=["WEBP"], settings=VideoSettings(webp_quality=5))
    high = save_video(frames, str(tmp_path), "high", formats=["WEBP"], settings=VideoSettings(webp_quality=95))
    assert os.path.getsize(low["WEBP"]) < os.path.getsize(high["WEBP"])


def test_png_frames_are_numbered_exact_and_carry_parameters(tmp_path):
    frames = [Image.fromarray(f).convert("RGBA") for f in moving_square(3)]  # PIL input, any mode
    folder = save_video(frames, str(tmp_path), "clip", formats=["PNG"], params_text=PARAMS)["PNG"]
    assert sorted(os.listdir(folder)) == ["clip-00000.png", "clip-00001.png", "clip-00002.png"]
    for i, frame in enumerate(frames):
        with Image.open(os.path.join(folder, f"clip-{i:05d}.png")) as im:
            assert im.info["parameters"] == PARAMS
            assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(frame.convert("RGB")))


def test_all_formats_at_once_and_base64(tmp_path):
    written = save_video(moving_square(4), str(tmp_path / "new" / "folder"), "v",
                         formats=("GIF", "MP4", "WEBP", "PNG", "gif"))
    assert sorted(written) == ["GIF", "MP4", "PNG", "WEBP"]
    assert base64.b64decode(encode_base64(written["MP4"])) == open(written["MP4"], "rb").read()


# ---- errors ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("frames, formats, message", [
    ([], ["GIF"], "empty"),
    (moving_square(2), ["AVI"], "Unknown output format 'AVI'"),
    (moving_square(2), [], "No output format"),
    (moving_square(1) + moving_square(1, width=32), ["GIF"], "Frame 1 is 32x21 but frame 0 is 33x21"),
    ([np.zeros((4, 4, 3), np.float32)], ["GIF"], "Frame 0 is an array of shape (4, 4, 3) and type float32"),
    ([np.zeros((4, 4), np.uint8)], ["GIF"], "expected uint8 (height, width, 3)"),
    (["frame.png"], ["GIF"], "Frame 0 is a str"),
])
def test_bad_input_is_refused_clearly(tmp_path, frames, formats, message):
    with pytest.raises(AnimLongError, match=None) as e:
        save_video(frames, str(tmp_path), "x", formats=formats)
    assert message in str(e.value)
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("field, value", [("gif_dither", "random"), ("gif_palette", "web"), ("mp4_crf", 60),
                                          ("webp_quality", -1), ("even_size", "scale"), ("loop", -1)])
def test_bad_settings_are_refused(field, value):
    with pytest.raises(AnimLongError) as e:
        VideoSettings(**{field: value})
    assert field.split("_")[-1].lower() in str(e.value).lower()


def test_unwritable_output_folder_names_the_folder(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(AnimLongError) as e:
        save_video(moving_square(2), str(blocker / "out"), "x", formats=["GIF"])
    assert str(blocker / "out") in str(e.value) and "writable" in str(e.value)


@pytest.mark.parametrize("fmt, name", [("GIF", "x.gif"), ("MP4", "x.mp4"), ("WEBP", "x.webp")])
def test_a_format_that_cannot_be_written_is_reported(tmp_path, fmt, name):
    (tmp_path / name).mkdir()  # a folder where the file should go
    with pytest.raises(AnimLongError) as e:
        save_video(moving_square(2), str(tmp_path), "x", formats=[fmt])
    assert f"Could not write {fmt} to {tmp_path / name}" in str(e.value)


# ---- whole files or none --------------------------------------------------------------------------------

def tree(folder):
    """{relative path: bytes} of every file under `folder`, hidden ones included."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = open(path, "rb").read()
    return found


WRITERS = {"GIF": "_write_gif", "MP4": "_write_mp4", "WEBP": "_write_webp", "PNG": "_write_png_frames"}


@pytest.mark.parametrize("fmt", ["GIF", "MP4", "WEBP", "PNG"])
def test_an_interrupted_write_keeps_the_earlier_file_and_leaves_no_partial_one(tmp_path, monkeypatch, fmt):
    from lib_animlong import video
    save_video(moving_square(12), str(tmp_path), "clip", formats=[fmt], params_text="first")
    before = tree(tmp_path)
    assert before and not any(os.path.basename(name).startswith(".") for name in before)
    real = getattr(video, WRITERS[fmt])
    written = []

    def interrupted(*args):
        """The real writer, then Ctrl-C with its output cut short (as if it came mid-write)."""
        real(*args)
        where = args[1] if fmt == "PNG" else args[2]     # (frames, folder, ...) / (frames, size, path, ...)
        target = where if os.path.isfile(where) else os.path.join(where, sorted(os.listdir(where))[-1])
        with open(target, "r+b") as handle:
            handle.truncate(40)
        written.append(where)
        raise KeyboardInterrupt

    monkeypatch.setattr(video, WRITERS[fmt], interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_video(moving_square(12, width=31), str(tmp_path), "clip", formats=[fmt], params_text="second")
    assert written                           # the writer ran and left a cut file where it was told to write
    assert tree(tmp_path) == before          # same names, same bytes, nothing hidden left behind


def test_a_finished_write_replaces_the_earlier_file_unless_told_not_to(tmp_path):
    first = save_video(moving_square(4), str(tmp_path), "clip", formats=["GIF", "PNG"])
    save_video(moving_square(6), str(tmp_path), "clip", formats=["GIF", "PNG"])
    assert Image.open(first["GIF"]).n_frames == 6 and len(os.listdir(first["PNG"])) == 6
    before = tree(tmp_path)
    for fmt in ("GIF", "PNG"):
        with pytest.raises(AnimLongError, match="already exists"):
            save_video(moving_square(3), str(tmp_path), "clip", formats=[fmt], overwrite=False)
    assert tree(tmp_path) == before
    fresh = save_video(moving_square(3), str(tmp_path), "other", formats=["GIF", "PNG"], overwrite=False)
    assert Image.open(fresh["GIF"]).n_frames == 3 and len(os.listdir(fresh["PNG"])) == 3
    assert not [name for name in tree(tmp_path) if os.path.basename(name).startswith(".")]


def test_the_output_folder_check_creates_the_folder_and_leaves_it_empty(tmp_path):
    from lib_animlong.video import check_output_folder
    check_output_folder(str(tmp_path / "a" / "b"))
    assert os.listdir(str(tmp_path / "a" / "b")) == []
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AnimLongError, match="writable"):
        check_output_folder(str(blocker / "out"))


def test_a_failed_format_publishes_none_of_the_others(tmp_path, monkeypatch):
    from lib_animlong import video
    save_video(moving_square(4), str(tmp_path), "clip", formats=["GIF", "MP4", "PNG"])
    before = tree(tmp_path)

    def failing(*args):
        raise RuntimeError("ffmpeg failed (disk full)")

    monkeypatch.setattr(video, "_write_mp4", failing)       # GIF written first, then MP4 fails
    with pytest.raises(AnimLongError, match="disk full"):
        save_video(moving_square(6), str(tmp_path), "clip", formats=["GIF", "MP4", "PNG"])
    assert tree(tmp_path) == before
