"""`python -m lib_animlong inspect FILE [--json]`: what a motion-module file is, or why it is refused.

A file of another kind (a MotionLoRA, a v3 domain adapter, an image LoRA, a checkpoint, ...) is refused
with one line naming its kind and what to do with it (motion.formats.classify).

A .safetensors file is recognised from its header alone (motion.header: names, shapes and dtypes, no
weights, no torch), so `inspect` answers in a fraction of a second; the answer and every refusal are the
ones reading the tensors with torch gives (tests/test_inspect_header.py). .ckpt / .pth / .pt files are
pickles and are read with torch's loader (motion.loader), imported only then."""
import json
import os

from ..errors import AnimLongError


def add_arguments(parser) -> None:
    parser.add_argument("file", help="a motion-module file (.safetensors, .ckpt, .pth)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def describe(path: str, header_only: bool = True) -> dict:
    """What `inspect` prints, as a dict (family, version, pe_length, has_mid, channels, kind, file, dtype,
    parameters). header_only=False reads every file with torch (the reference the header path is tested
    against). Raises AnimLongError with the refusal for anything that is not a motion module."""
    state = None
    if header_only:
        from ..motion.formats import unwrap
        from ..motion.header import is_safetensors, read_header
        if is_safetensors(path):
            header = read_header(path)
            state = None if header is None else unwrap(header)
    if state is None:
        from ..motion.loader import read_state_dict
        state = read_state_dict(path)
    return _description(path, state)


def _description(path: str, state) -> dict:
    """state: name -> tensor, or motion.header.TensorShape (anything with .shape, .ndim, .dtype, .numel())."""
    from ..motion.formats import normalise, recognise
    recognised = recognise(state)
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in state.values()})
    return dict(recognised.summary(), kind="motion module", file=os.path.abspath(path), dtype="/".join(dtypes),
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
