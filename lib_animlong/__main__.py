"""`python -m lib_animlong <command>`: the headless entry points (inspect, render, plan).

Only the standard library is imported up front (torch takes a second or more to import): `--help`
answers at once, and each command imports what it needs when it runs. Ctrl-C ends with one line and exit
status 130; files being written are left whole or not at all (video.py).
"""
import argparse
import importlib
import sys

from .errors import AnimLongError

COMMANDS = {
    "inspect": "Show what a motion-module file is (family, version, positional table, ...).",
    "render": "Render a long animation headless through the same engine the webui uses.",
    "plan": "Show what the options will do: duration, windows per step, frames each window sees, the picture.",
}
INTERRUPTED = 130   # the shell's status for a command ended by SIGINT (128 + 2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib_animlong", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        command = importlib.import_module(f"lib_animlong.cli.{name}")
        command.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        return importlib.import_module(f"lib_animlong.cli.{args.command}").run(args) or 0
    except AnimLongError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): stopped; no file was left half-written, earlier files are as they were",
              file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
