"""The options fitted to the loaded motion module's positional table, before any sampling work.

A motion module knows a fixed number of frame positions, its positional table (`pos_encoder.pe` rows):
24 for v1 and HotShot-XL, 32 for v2, v3 and the SDXL beta, 64 for AnimateLCM (files without a table; the
sinusoid is built with 64 rows), 64 or 128 for LongAnimateDiff (motion.formats). Every frame a window
attends to needs a position: with `reference_positions='unique'` (the default) its own frames and its
reference frames together, with 'none' its own frames only (references carry no position).

The rules, in order (`fit_options`):
1. context length: a window cannot hold more frames than the table. A context length you chose (any value
   but the default, 16) that is longer is refused with a message naming 'context_length' and the table;
   the default is lowered to the table (only custom modules have tables under 16).
2. references, 'unique' positions: a window of L frames (L = min(context length, frames)) and R reference
   frames needs L + R positions. The automatic reference budget (0: as many as the window's own frames)
   becomes what is left, table - L (e.g. v1: 16 + 8 = 24); with nothing left, references are turned off
   (or, when keyframes-first pins keyframes every window reads, their positions). A reference budget you
   chose that does not fit is refused with a message naming 'reference_budget'.
3. 'window' positions place references at their true distance, which depends on the plan; they are
   checked per window while sampling (reference.py) and refused there with a message.

The result records what was used: the fitted options and one human-readable line per change, which the
webui writes into the infotext and the headless renderer prints.
"""
from dataclasses import dataclass, fields
from typing import Tuple

from .errors import AnimLongError
from .options import AnimationOptions

DEFAULTS = {f.name: f.default for f in fields(AnimationOptions)}


@dataclass(frozen=True)
class FittedOptions:
    options: AnimationOptions             # what sampling uses
    table: int                            # the motion module's positional table (frames)
    adjustments: Tuple[str, ...] = ()     # one line per option changed, e.g. "reference_budget 0 -> 8 (...)"

    def infotext(self) -> str:
        """The adjustments as one infotext value ('' when nothing changed)."""
        return "; ".join(self.adjustments)


def fit_options(options: AnimationOptions, table: int) -> FittedOptions:
    """`options` fitted to a motion module whose positional table has `table` rows (see the module text).

    Raises AnimLongError naming 'context_length' or 'reference_budget' when a value the user chose does not
    fit. A value equal to the option's default counts as not chosen."""
    if table < 2:
        raise AnimLongError(f"The motion module's positional table has {table} rows; a window needs at least 2. "
                            "The file is not a usable motion module.")
    adjustments = []
    if options.context_length > table:
        if options.context_length != DEFAULTS["context_length"]:
            raise AnimLongError(
                f"Option 'context_length' ({options.context_length}) is longer than this motion module's "
                f"positional table ({table} frames): a window cannot hold more frames than the module has "
                f"positions. Set context_length to {table} or less.")
        adjustments.append(f"context_length {options.context_length} -> {table} (the motion module's positional "
                           f"table has {table} frames)")
        options = options.replace(context_length=table)
    length = min(options.context_length, options.frames)
    refers = options.references != "none" or options.keyframes_first
    if options.reference_positions == "unique" and refers:
        budget = min(options.reference_budget or length, length)
        room = table - length
        if budget > room:
            if options.reference_budget:
                raise AnimLongError(
                    f"Option 'reference_budget' ({options.reference_budget}) does not fit: with "
                    f"reference_positions 'unique', a window of {length} frames and {budget} reference frames "
                    f"needs {length + budget} positions, but this motion module's positional table has {table}. "
                    f"Set reference_budget to {room} or less" + (", or reference_positions to 'none'." if room
                                                                  else ", or lower context_length."))
            why = f"a window of {length} frames leaves {room} of the table's {table} positions for references"
            if room:
                adjustments.append(f"reference_budget 0 -> {room} ({why})")
                options = options.replace(reference_budget=room)
            elif options.keyframes_first:
                adjustments.append(f"reference_positions unique -> none ({why}; keyframes are read without positions)")
                options = options.replace(reference_positions="none")
            else:
                adjustments.append(f"references {options.references} -> none ({why})")
                options = options.replace(references="none")
    return FittedOptions(options, table, tuple(adjustments))
