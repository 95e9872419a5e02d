"""Write a list of frames as GIF, MP4 (H.264), animated WebP and numbered PNG frames.

Frames are PIL images or uint8 arrays (H, W, 3). Encoding uses Pillow for GIF / WebP / PNG and the ffmpeg
bundled with imageio-ffmpeg for MP4, so nothing else has to be installed. Works with Pillow 9.5 (the
webui's) as well as newer Pillow: only APIs that exist in both are used.
"""
import base64
import errno
import os
import secrets
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, PngImagePlugin

from .errors import AnimLongError
from .options import OUTPUT_FORMATS

GIF_PALETTES = ("global", "per-frame")
GIF_DITHERS = ("floyd-steinberg", "ordered", "none")
EVEN_SIZE_MODES = ("pad", "crop")
_EXTENSIONS = {"GIF": ".gif", "MP4": ".mp4", "WEBP": ".webp"}
_GIF_MIN_DELAY_MS = 20  # browsers replace delays of 10 ms or less with 100 ms: GIFs play at most 50 fps


@dataclass(frozen=True)
class VideoSettings:
    """Encoder settings; the defaults suit browsers and the webui gallery."""
    loop: int = 0                       # GIF / WebP loop count written to the file; 0 loops forever
    gif_palette: str = "global"         # one palette from frames sampled across the video, or one per frame
    gif_dither: str = "floyd-steinberg"  # "ordered" is temporally stable (no crawling noise), "none" bands
    gif_palette_samples: int = 16       # frames sampled to build the global palette
    mp4_crf: int = 18                   # libx264 constant rate factor: 0 lossless .. 51 worst
    mp4_preset: str = "medium"
    even_size: str = "pad"              # MP4 yuv420p needs even sizes: replicate the edge pixel, or crop one
    webp_quality: int = 80
    webp_lossless: bool = False

    def __post_init__(self):
        _require(self.gif_palette in GIF_PALETTES, f"Unknown GIF palette {self.gif_palette!r}; "
                 f"choose one of {', '.join(GIF_PALETTES)}.")
        _require(self.gif_dither in GIF_DITHERS, f"Unknown GIF dithering {self.gif_dither!r}; "
                 f"choose one of {', '.join(GIF_DITHERS)}.")
        _require(self.even_size in EVEN_SIZE_MODES, f"Unknown even-size mode {self.even_size!r}; "
                 f"choose one of {', '.join(EVEN_SIZE_MODES)}.")
        _require(0 <= self.mp4_crf <= 51, f"MP4 CRF must be between 0 and 51, got {self.mp4_crf}.")
        _require(0 <= self.webp_quality <= 100,
                 f"WebP quality must be between 0 and 100, got {self.webp_quality}.")
        _require(0 <= self.loop <= 65535, f"Loop count must be between 0 (forever) and 65535, got {self.loop}.")
        _require(self.gif_palette_samples >= 1,
                 f"GIF palette samples must be at least 1, got {self.gif_palette_samples}.")


def save_video(frames: Sequence, folder: str, basename: str, formats: Iterable[str] = ("GIF", "MP4"),
               fps: float = 8, params_text: Optional[str] = None,
               settings: Optional[VideoSettings] = None, overwrite: bool = True) -> Dict[str, str]:
    """Write `frames` in each of `formats` into `folder`; returns {format: path}.

    PNG frames go to `<folder>/<basename>-frames/<basename>-00000.png` ... and the returned path is that
    folder. `params_text` (the generation parameters) is embedded where the format has a place for it.

    Every format is first written aside, under a hidden `.<name>.part-<random>` name in the same folder;
    only when all are complete are they renamed into place. So files appear whole or not at all, and an
    error or an interrupt (KeyboardInterrupt) while writing removes the partial copies and leaves every
    earlier file of the same names as it was (no mix of new and old formats). With `overwrite=False` an
    existing file or folder of one of the names is never replaced: AnimLongError, before anything is
    written. Raises AnimLongError for bad input and for anything that cannot be written.
    """
    settings = settings or VideoSettings()
    wanted = _normalise_formats(formats)
    size = _check_frames(frames)
    _require(fps > 0, f"FPS must be positive, got {fps}.")
    check_output_folder(folder)
    writers = {"GIF": _write_gif, "MP4": _write_mp4, "WEBP": _write_webp}
    targets = {fmt: os.path.join(folder, f"{basename}-frames" if fmt == "PNG" else basename + _EXTENSIONS[fmt])
               for fmt in wanted}
    if not overwrite:
        for fmt, path in targets.items():
            if os.path.lexists(path):
                raise _write_error(fmt if fmt != "PNG" else "PNG frames", path,
                                   FileExistsError(errno.EEXIST, "a file or folder of that name already exists"))
    asides: Dict[str, str] = {}
    try:
        for fmt, path in targets.items():
            try:
                if fmt == "PNG":
                    asides[fmt] = _aside(path)
                    os.mkdir(asides[fmt])
                    _write_png_frames(frames, asides[fmt], basename, params_text)
                else:
                    asides[fmt] = _reserve(path)
                    writers[fmt](frames, size, asides[fmt], fps, params_text, settings)
            except (OSError, RuntimeError) as e:  # RuntimeError: ffmpeg exited with an error
                raise _write_error(fmt if fmt != "PNG" else "PNG frames", path, e) from e
        for fmt in list(asides):
            try:
                _publish(asides[fmt], targets[fmt], overwrite)
            except OSError as e:
                raise _write_error(fmt if fmt != "PNG" else "PNG frames", targets[fmt], e) from e
            del asides[fmt]
    finally:
        for aside in asides.values():
            _discard(aside)
    return targets


def check_output_folder(folder: str) -> None:
    """Create `folder` if needed and prove it takes a new file (created and removed at once); raises
    AnimLongError naming the folder and the system's reason otherwise. Cheap: call it before long work."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = _reserve(os.path.join(folder, "write-test"))
        os.remove(probe)
    except OSError as e:
        raise _write_error("the output folder", folder, e) from e


def encode_base64(path: str) -> str:
    """The file's bytes as base64 text (the API returns videos this way in `images`)."""
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")


# ---- input checks -------------------------------------------------------------------------------------

def _normalise_formats(formats: Iterable[str]) -> List[str]:
    if isinstance(formats, str):
        formats = [formats]
    wanted = []
    for fmt in formats:
        name = str(fmt).strip().upper()
        _require(name in OUTPUT_FORMATS, f"Unknown output format {fmt!r}. Choose from {', '.join(OUTPUT_FORMATS)}.")
        if name not in wanted:
            wanted.append(name)
    _require(bool(wanted), f"No output format chosen. Choose at least one of {', '.join(OUTPUT_FORMATS)}.")
    return wanted


def _check_frames(frames: Sequence) -> Tuple[int, int]:
    """(width, height) shared by all frames; refuses empty lists, unknown types and mixed sizes."""
    _require(len(frames) > 0, "There are no frames to save: the frame list is empty.")
    sizes = [_frame_size(frame, i) for i, frame in enumerate(frames)]
    for i, size in enumerate(sizes):
        _require(size == sizes[0], f"Frame {i} is {size[0]}x{size[1]} but frame 0 is {sizes[0][0]}x{sizes[0][1]}: "
                 "all frames of a video must have the same size.")
    return sizes[0]


def _frame_size(frame, index: int) -> Tuple[int, int]:
    if isinstance(frame, Image.Image):
        return frame.size
    if isinstance(frame, np.ndarray):
        _require(frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3,
                 f"Frame {index} is an array of shape {frame.shape} and type {frame.dtype}; expected uint8 "
                 "(height, width, 3), e.g. (x * 255).round().clip(0, 255).astype(numpy.uint8).")
        return frame.shape[1], frame.shape[0]
    raise AnimLongError(f"Frame {index} is a {type(frame).__name__}; expected a PIL image or a uint8 numpy "
                        "array (height, width, 3).")


def _rgb_array(frame) -> np.ndarray:
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    return np.ascontiguousarray(frame)


def _rgb_image(frame) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame if frame.mode == "RGB" else frame.convert("RGB")
    return Image.fromarray(frame, "RGB")


def _require(condition: bool, message: str):
    if not condition:
        raise AnimLongError(message)


def _write_error(what: str, path: str, error: Exception) -> AnimLongError:
    return AnimLongError(f"Could not write {what} to {path}: {error}. Check that the folder exists, is "
                         "writable and that the disk has free space, or choose another output folder.")


def _remove_quietly(path: str):
    try:
        os.remove(path)
    except OSError:
        pass


def _aside(path: str) -> str:
    """A hidden name next to `path`, same extension (ffmpeg picks its container from it)."""
    folder, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.part-{secrets.token_hex(4)}{extension}")


def _reserve(path: str) -> str:
    """Create an empty hidden file next to `path` (exclusively, so no other writer shares it); its name."""
    while True:
        aside = _aside(path)
        try:
            with open(aside, "xb"):
                return aside
        except FileExistsError:
            continue


def _discard(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        _remove_quietly(path)


def _publish(aside: str, path: str, overwrite: bool) -> None:
    """Rename the finished `aside` (a file or a folder) to `path`. A file replaces an earlier one in one
    step (os.replace); with overwrite=False it is linked in, which fails rather than replace a file that
    appeared meanwhile. An earlier folder is moved aside first and removed only once the new one is in
    place (moved back if that fails)."""
    if not os.path.isdir(aside):
        if overwrite:
            os.replace(aside, path)
        else:
            os.link(aside, path)
            os.remove(aside)
        return
    old = None
    if os.path.lexists(path):
        if not overwrite:
            raise FileExistsError(errno.EEXIST, "a folder of that name already exists", path)
        old = _aside(path)
        os.rename(path, old)
    try:
        os.rename(aside, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)
        raise
    if old is not None:
        _discard(old)


# ---- GIF ------------------------------------------------------------------------------------------------

def frame_durations_ms(num_frames: int, fps: float, unit_ms: int = 1, minimum_ms: int = 1) -> List[int]:
    """Per-frame delays in multiples of `unit_ms` whose running sum tracks (i + 1) / fps.

    A constant rounded delay drifts (GIF stores 10 ms units: 8 fps would play at 8.33); alternating
    120 / 130 ms keeps 8 fps on average.
    """
    ends = [int(round((i + 1) * 1000.0 / fps / unit_ms)) * unit_ms for i in range(num_frames)]
    starts = [0] + ends[:-1]
    return [max(minimum_ms, end - start) for start, end in zip(starts, ends)]


def _write_gif(frames, size, path, fps, params_text, settings: VideoSettings):
    paletted = list(_quantised_frames(frames, settings))
    extra = {"comment": params_text.encode("utf-8")} if params_text else {}
    durations = frame_durations_ms(len(paletted), fps, unit_ms=10, minimum_ms=_GIF_MIN_DELAY_MS)
    # Pillow stores only the changed rectangle of each frame and merges identical consecutive frames.
    paletted[0].save(path, format="GIF", save_all=True, append_images=paletted[1:], duration=durations,
                     loop=settings.loop, optimize=False, disposal=1, **extra)


def _quantised_frames(frames, settings: VideoSettings) -> Iterator[Image.Image]:
    shared = None
    if settings.gif_palette == "global":
        picks = np.linspace(0, len(frames) - 1, min(settings.gif_palette_samples, len(frames))).round()
        shared = _median_cut_palette([frames[i] for i in np.unique(picks.astype(int))])
    for frame in frames:
        image = _rgb_image(frame)
        palette = shared if shared is not None else _median_cut_palette([image])
        yield _apply_palette(image, palette, settings.gif_dither)


def _median_cut_palette(frames) -> Image.Image:
    """A 256-colour median-cut palette of the frames tiled side by side, each shrunk to at most 256 pixels
    across first (the palette barely changes; building it gets many times faster)."""
    tiles = [_rgb_image(frame) for frame in frames]
    tiles = [t if max(t.size) <= 256 else t.resize(_fit(t.size, 256), Image.Resampling.BOX) for t in tiles]
    mosaic = Image.new("RGB", (tiles[0].width * len(tiles), tiles[0].height))
    for i, tile in enumerate(tiles):
        mosaic.paste(tile, (i * tile.width, 0))
    return mosaic.quantize(256, method=Image.Quantize.MEDIANCUT)


def _fit(size: Tuple[int, int], longest: int) -> Tuple[int, int]:
    scale = longest / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _apply_palette(image: Image.Image, palette: Image.Image, dither: str) -> Image.Image:
    if dither == "floyd-steinberg":
        return image.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    if dither == "ordered":
        image = _ordered_offset(image, palette)
    return image.quantize(palette=palette, dither=Image.Dither.NONE)


def _bayer_thresholds(order: int = 3) -> np.ndarray:
    """(2^order, 2^order) Bayer matrix scaled to thresholds in (-0.5, 0.5)."""
    matrix = np.zeros((1, 1), dtype=np.int64)
    for _ in range(order):
        matrix = np.block([[4 * matrix, 4 * matrix + 2], [4 * matrix + 3, 4 * matrix + 1]])
    return (matrix + 0.5) / matrix.size - 0.5


def _ordered_offset(image: Image.Image, palette: Image.Image) -> Image.Image:
    """Add a fixed Bayer pattern (rotated per channel, so hue steps dither too) scaled to twice the
    palette's typical colour spacing; the nearest-colour mapping that follows then dithers.

    The pattern is tied to the pixel grid, so still areas stay still from frame to frame. Against banding
    it does less than Floyd-Steinberg.
    """
    colours = np.unique(np.asarray(palette.getpalette()[:768], dtype=np.float32).reshape(-1, 3), axis=0)
    if len(colours) < 2:
        return image
    gaps = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    amplitude = 2.0 * float(np.median(gaps.min(axis=1)))
    thresholds = _bayer_thresholds()
    per_channel = np.stack([thresholds, np.rot90(thresholds), np.rot90(thresholds, 2)], axis=-1)
    pixels = np.asarray(image, dtype=np.float32)
    h, w = pixels.shape[:2]
    n = len(thresholds)
    pattern = np.tile(per_channel, (h // n + 1, w // n + 1, 1))[:h, :w]
    dithered = pixels + amplitude * pattern
    return Image.fromarray(dithered.round().clip(0, 255).astype(np.uint8), "RGB")


# ---- MP4 ------------------------------------------------------------------------------------------------

def _even_frame(pixels: np.ndarray, mode: str) -> np.ndarray:
    h, w = pixels.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return pixels
    if mode == "crop":
        return pixels[: h - h % 2, : w - w % 2]
    return np.pad(pixels, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def mp4_size(size: Tuple[int, int], even_size: str = "pad") -> Tuple[int, int]:
    """The (width, height) an MP4 of frames of `size` gets: yuv420p needs both even."""
    step = 1 if even_size == "pad" else -1
    return tuple(s + step if s % 2 else s for s in size)


def _write_mp4(frames, size, path, fps, params_text, settings: VideoSettings):
    import imageio_ffmpeg

    width, height = mp4_size(size, settings.even_size)
    _require(width > 0 and height > 0, f"Frames of {size[0]}x{size[1]} are too small for MP4.")
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-",
               "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(settings.mp4_crf),
               "-preset", settings.mp4_preset, "-movflags", "+faststart"]
    if params_text:
        command += ["-metadata", f"comment={params_text}"]
    _run_ffmpeg(command + [path], (_even_frame(_rgb_array(frame), settings.even_size) for frame in frames))


def _run_ffmpeg(command: List[str], frames: Iterator[np.ndarray]):
    """Pipe raw frames into ffmpeg; a non-zero exit becomes a RuntimeError carrying ffmpeg's own message.

    (imageio-ffmpeg's write_frames ignores ffmpeg's exit status, so a failed write would look like success.)
    """
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        try:
            for frame in frames:
                process.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped early; its exit status and log say why
        finally:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
            process.wait()
        if process.returncode != 0:
            log.seek(0)
            message = log.read().decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"ffmpeg failed ({message[-1] if message else f'exit status {process.returncode}'})")


# ---- WebP -----------------------------------------------------------------------------------------------

def exif_user_comment(text: str) -> bytes:
    """Minimal little-endian TIFF/EXIF block holding `text` as EXIF UserComment (Unicode), as the webui
    writes for JPEG/WebP, so its PNG Info tab reads the parameters back."""
    comment = b"UNICODE\0" + text.encode("utf-16-be")
    ifd0_at, exif_ifd_at = 8, 8 + 2 + 12 + 4
    data_at = exif_ifd_at + 2 + 12 + 4
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, exif_ifd_at) + struct.pack("<I", 0)
    exif_ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x9286, 7, len(comment), data_at) + struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", ifd0_at) + ifd0 + exif_ifd + comment


def _write_webp(frames, size, path, fps, params_text, settings: VideoSettings):
    images = [_rgb_image(frame) for frame in frames]
    extra = {"exif": exif_user_comment(params_text)} if params_text else {}
    duration = frame_durations_ms(len(images), fps)
    images[0].save(path, format="WEBP", save_all=True, append_images=images[1:], duration=duration,
                   loop=settings.loop, quality=settings.webp_quality, lossless=settings.webp_lossless, **extra)


# ---- PNG frames -----------------------------------------------------------------------------------------

def _write_png_frames(frames, folder, basename, params_text):
    """Numbered PNG files into `folder` (which exists)."""
    info = None
    if params_text:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", params_text)  # the key the webui's PNG Info tab reads
    digits = max(5, len(str(len(frames) - 1)))
    for i, frame in enumerate(frames):
        _rgb_image(frame).save(os.path.join(folder, f"{basename}-{i:0{digits}d}.png"), pnginfo=info)
