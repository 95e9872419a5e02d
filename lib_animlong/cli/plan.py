"""`python -m lib_animlong plan --frames N --steps S`: the window plan of the options, as text or PNG.

Every AnimationOptions field is a flag, as for `render`. With `--motion-module FILE` (or `--table N`) the
options are first fitted to the module's positional table, exactly as a generation would be, and a
choice the generation would refuse is reported with its message (exit status 2).
"""
import argparse
import json
import os
from pathlib import Path

from ..errors import AnimLongError
from ..options import AnimationOptions, option_fields

IMG2IMG_ONLY = ("first_frame_strength", "last_frame_strength")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=20, help="sampling steps (default: 20)")
    parser.add_argument("--step", type=int, default=None,
                        help="the step whose windows are shown, 1..steps (default: the last)")
    parser.add_argument("--motion-module", type=Path, help="fit the options to this motion-module file")
    parser.add_argument("--table", type=int,
                        help="or: fit them to a positional table of this many frames (24 v1, 32 v2/v3)")
    parser.add_argument("--png", type=Path, help="also write the picture of the step to this PNG file")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    animation = parser.add_argument_group("animation (AnimationOptions)")
    for f in option_fields():
        if f.name in IMG2IMG_ONLY:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {f.default})"
        if f.type is bool:
            animation.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                   help=help_text)
        else:
            animation.add_argument(flag, dest=f.name, type=f.type, choices=f.metadata["choices"], default=None,
                                   help=help_text)


def module_info(path: Path):
    """What `inspect` reads from a motion-module file, as the summary needs it. A .safetensors file is
    recognised from its header alone (motion.header: names and shapes, no weights read, no torch,
    milliseconds for a 1.8 GB file); other containers are read as `inspect` reads them."""
    from ..summary import ModuleInfo
    from .inspect import describe
    info = describe(str(path))
    return ModuleInfo(name=os.path.basename(str(path)), family=info["family"], version=info["version"],
                      pe_length=int(info["pe_length"]))


def run(args: argparse.Namespace) -> int:
    from ..summary import ModuleInfo, plan_png, plan_text, summarise
    given = {f.name: getattr(args, f.name) for f in option_fields()
             if f.name not in IMG2IMG_ONLY and getattr(args, f.name) is not None}
    options = AnimationOptions.from_dict(given)
    module = None
    if args.motion_module is not None:
        module = module_info(args.motion_module)
    elif args.table is not None:
        if args.table < 2:
            raise AnimLongError(f"--table must be at least 2 frames; got {args.table}.")
        module = ModuleInfo(name=f"table {args.table}", family="?", version="?", pe_length=args.table)
    step = None if args.step is None else args.step - 1
    if args.step is not None and not 1 <= args.step <= args.steps:
        raise AnimLongError(f"--step must be between 1 and --steps ({args.steps}); got {args.step}.")
    summary = summarise(options, args.steps, step, module)
    print(json.dumps(summary.as_dict()) if args.json else plan_text(summary), end="" if not args.json else "\n")
    if summary.refused:
        return 2
    if args.png is not None:
        if args.png.exists():
            raise AnimLongError(f"--png {args.png} already exists; choose a new file name (nothing is overwritten).")
        args.png.parent.mkdir(parents=True, exist_ok=True)
        with open(args.png, "xb") as out:
            out.write(plan_png(summary))
        if not args.json:
            print(f"picture: {args.png}")
    return 0
