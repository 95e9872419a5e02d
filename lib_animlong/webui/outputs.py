"""After the generation: each batch of frames becomes a video file; the gallery / API response shows it.

Files go to <outputs>/<txt2img|img2img>-images/AnimLong/<date>/ (or the folder set in the settings). A
folder that cannot be written is reported in the comments and the frames are still returned.
"""
import datetime
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from ..errors import AnimLongError
from ..video import VideoSettings, encode_base64, save_video

PREVIEW_FORMATS = ("GIF", "WEBP")   # the gallery plays these; MP4 / PNG are only saved


@dataclass(frozen=True)
class OutputSettings:
    folder: str = ""                # empty: <p.outpath_samples>/AnimLong/<date>
    mp4_crf: int = 18
    gif_palette: str = "global"
    save_frames: bool = False       # also write PNG frames
    video: Optional[VideoSettings] = None   # every encoder setting (Settings > Long animation); None: the above


def output_folder(outpath_samples: str, settings: OutputSettings, today: datetime.date) -> str:
    base = settings.folder.strip() or os.path.join(outpath_samples or "outputs", "AnimLong")
    return os.path.join(base, today.isoformat())


def write_videos(frames: Sequence, infotexts: Sequence[str], seeds: Sequence[int], frames_per_video: int,
                 formats: Sequence[str], fps: int, folder: str, settings: OutputSettings):
    """[(frames of the video, {format: path})]; a write failure leaves {} for that video and a note."""
    formats = list(formats) + (["PNG"] if settings.save_frames and "PNG" not in formats else [])
    video_settings = settings.video or VideoSettings(mp4_crf=settings.mp4_crf, gif_palette=settings.gif_palette)
    results, notes = [], []
    for start in range(0, len(frames) - frames_per_video + 1, frames_per_video):
        clip = list(frames[start:start + frames_per_video])
        name = free_name(folder, seeds[start] if start < len(seeds) else 0, formats)
        try:
            paths = save_video(clip, folder, name, formats, fps=fps, params_text=infotexts[start],
                               settings=video_settings)
        except AnimLongError as error:
            notes.append(f"AnimLong could not save the video ({error}); the frames are shown instead.")
            paths = {}
        results.append((clip, paths))
    return results, notes


def next_number(folder: str) -> int:
    """The largest number a name in `folder` starts with, plus one (0 for an empty or missing folder), as the
    webui numbers its images (modules/images.py get_next_sequence_number): deleting an earlier file never
    makes a taken number come round again."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return 0
    largest = -1
    for entry in entries:
        prefix = entry.split("-")[0].split(".")[0]
        if prefix.isdigit():
            largest = max(largest, int(prefix))
    return largest + 1


def free_name(folder: str, seed: int, formats: Sequence[str]) -> str:
    """`<number>-<seed>` with the next number, moved on while any file it would write already exists (a file
    written meanwhile by another tab): no existing file is ever opened for writing."""
    number = next_number(folder)
    while True:
        name = f"{number:05}-{seed}"
        if not any(os.path.lexists(path) for path in _paths(folder, name, formats)):
            return name
        number += 1


def _paths(folder: str, name: str, formats: Sequence[str]) -> List[str]:
    from ..video import _EXTENSIONS
    return [os.path.join(folder, f"{name}-frames") if fmt == "PNG" else
            os.path.join(folder, name + _EXTENSIONS.get(fmt, "." + fmt.lower())) for fmt in formats]


def gallery(results, infotexts: Sequence[str], frames_per_video: int, is_api: bool, return_frames: bool):
    """(images, infotexts) for Processed: per video its file (a path for the UI gallery, base64 for the
    API) then, in the UI or on request, its frames."""
    images: List = []
    texts: List[str] = []
    for k, (clip, paths) in enumerate(results):
        text = infotexts[k * frames_per_video]
        shown = [fmt for fmt in paths if fmt != "PNG"] if is_api else [f for f in PREVIEW_FORMATS if f in paths]
        for fmt in shown:
            images.append(encode_base64(paths[fmt]) if is_api else paths[fmt])
            texts.append(text)
            if not is_api:
                break
        if not is_api or return_frames or not shown:
            images += clip
            texts += list(infotexts[k * frames_per_video:(k + 1) * frames_per_video])
    return images, texts


def video_paths(results) -> List[Dict[str, str]]:
    return [paths for _, paths in results]
