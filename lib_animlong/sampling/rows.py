"""The row map of one model call: which frame of which video ("track") each row of `x` holds.

A long animation is sampled as one batch of N frames, but the batch a model call receives is laid out by
whoever calls the model: headless, V videos of N frames one after the other; in the webui, the CFG
denoiser's `x_in`, which repeats every image once per AND part, interleaved, then appends the uncond rows
(modules/sd_samplers_cfg_denoiser.py, v1.10.1):

    x_in = cat([stack([x[i]] * repeats[i]) for i in range(N)] + [x])

so with `a red ball AND a green cone` and N = 3 the rows are (frame, part) = (0,0) (0,1) (1,0) (1,1) (2,0)
(2,1) then uncond 0 1 2. A window's call must hold, for every track (cond part or uncond), exactly the frames
the plan names, in order. The map is built from what the caller knows (the webui's conds), never inferred
from a row count, and a call it cannot map is refused.

When prompt travel puts AND in only some keyframes, a cond part exists for some frames only: its track has
no row for the others (None). A window of that track then borrows the frame's row of the first track that
has it (same latent, another prompt) so the motion module still sees a whole window; borrowed rows are
computed but never fused into the output.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..errors import AnimLongError


@dataclass(frozen=True)
class RowMap:
    frames: int                                      # N, the animation's frame count
    rows: int                                        # rows of the model call
    tracks: Tuple[Tuple[Optional[int], ...], ...]    # tracks[t][f]: the row holding frame f of track t, or None
    names: Tuple[str, ...] = ()                      # per track, for messages ("cond part 1", "uncond")

    def __post_init__(self):
        seen = [row for track in self.tracks for row in track if row is not None]
        if any(len(track) != self.frames for track in self.tracks):
            raise AnimLongError("Internal error: a row map track does not list every frame.")
        if sorted(seen) != list(range(self.rows)):
            raise AnimLongError(f"Internal error: a row map of {self.rows} rows names rows {sorted(seen)[:12]}; "
                                "every row must belong to exactly one (track, frame).")

    @classmethod
    def blocks(cls, videos: int, frames: int) -> "RowMap":
        """V videos of N frames, one after the other (the headless renderer's [cond | uncond])."""
        return cls(frames, videos * frames, tuple(tuple(v * frames + f for f in range(frames))
                                                  for v in range(videos)),
                   tuple(f"video {v}" for v in range(videos)))

    @classmethod
    def cfg(cls, repeats: Sequence[int], uncond: bool = True) -> "RowMap":
        """The webui CFG denoiser's x_in: per frame i, repeats[i] cond rows (one per AND part), then (if
        `uncond`) one uncond row per frame. repeats[i] = len(conds_list[i]) from
        prompt_parser.reconstruct_multicond_batch; len(repeats) is the frame count."""
        frames = len(repeats)
        if frames == 0 or min(repeats) < 1:
            raise AnimLongError(f"The webui sent conds for {frames} frames with {list(repeats)[:8]} prompt parts; "
                                "every frame needs at least one.")
        starts, total = [], 0
        for count in repeats:
            starts.append(total)
            total += count
        tracks = [tuple(starts[f] + part if part < repeats[f] else None for f in range(frames))
                  for part in range(max(repeats))]
        names = [f"cond part {part}" for part in range(len(tracks))]
        if uncond:
            tracks.append(tuple(total + f for f in range(frames)))
            names.append("uncond")
        return cls(frames, total + (frames if uncond else 0), tuple(tracks), tuple(names))

    def slice(self, start: int, stop: int) -> "RowMap":
        """The map of rows start..stop-1 (a chunk the webui sends on its own), renumbered from 0."""
        if not 0 <= start < stop <= self.rows:
            raise AnimLongError(f"A model call of rows {start}..{stop - 1} does not fit the {self.rows} rows "
                                "the webui's CFG denoiser laid out for this step.")
        tracks, names = [], []
        for k, track in enumerate(self.tracks):
            kept = tuple(row - start if row is not None and start <= row < stop else None for row in track)
            if any(row is not None for row in kept):
                tracks.append(kept)
                names.append(self.names[k] if k < len(self.names) else f"track {k}")
        return RowMap(self.frames, stop - start, tuple(tracks), tuple(names))

    def rows_of_frame(self, frame: int) -> List[int]:
        """Every row holding `frame` (one per track that has it)."""
        return [track[frame] for track in self.tracks if track[frame] is not None]

    def gather(self, windows: Sequence[Sequence[int]]) -> Tuple[List[int], List[bool]]:
        """(rows, own) of a call computing `windows` (frame lists of equal length): per track, per window,
        per frame, the row to feed (track-major, as the motion module reads videos x frames) and whether it
        is the track's own row (fused into the output) or borrowed from another track."""
        rows, own = [], []
        for k, track in enumerate(self.tracks):
            for frames in windows:
                for frame in frames:
                    row = track[frame]
                    if row is None:
                        row = next((other[frame] for other in self.tracks if other[frame] is not None), None)
                        if row is None:
                            raise AnimLongError(
                                f"AnimLong: a model call holds only part of the animation's frames (frame {frame} "
                                f"is missing for {self._name(k)}), so a window of frames {list(frames)[:8]} "
                                "cannot be computed. The webui split the batch into chunks: turn on "
                                "Settings > Optimizations > 'Batch cond/uncond', or use fewer AND parts, or pad "
                                "prompt and negative prompt to the same length ('Pad prompt/negative prompt').")
                        own.append(False)
                    else:
                        own.append(True)
                    rows.append(row)
        return rows, own

    def _name(self, k: int) -> str:
        return self.names[k] if k < len(self.names) else f"track {k}"
