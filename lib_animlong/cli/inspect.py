"""`python -m lib_animlong inspect FILE [--json]`: what a motion-module file is, or why it is refused.

torch and the loader are imported by describe(), so `--help` answers at once."""
import json
import os

from ..errors import AnimLongError


def add_arguments(parser) -> None:
    parser.add_argument("file", help="a motion-module file (.safetensors, .ckpt, .pth)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def describe(path: str) -> dict:
    from ..motion.formats import normalise, recognise
    from ..motion.loader import read_state_dict
    state = read_state_dict(path)
    recognised = recognise(state)
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in state.values()})
    return dict(recognised.summary(), file=os.path.abspath(path), dtype="/".join(dtypes),
                parameters=sum(v.numel() for k, v in normalise(state).items() if not k.endswith("pos_encoder.pe")))


def run(args) -> int:
    info = describe(args.file)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"{os.path.basename(args.file)}: AnimateDiff motion module")
    rows = [("family", info["family"]), ("version", info["version"]),
            ("positional table", f"{info['pe_length']} frames (longest window)"),
            ("mid-block module", "yes" if info["has_mid"] else "no"),
            ("channels per level", ", ".join(map(str, info["channels"]))), ("dtype", info["dtype"]),
            ("parameters", f"{info['parameters'] / 1e6:.1f} M")]
    for name, value in rows:
        print(f"  {name:<20}{value}")
    return 0


__all__ = ["add_arguments", "run", "describe", "AnimLongError"]
