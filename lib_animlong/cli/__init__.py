"""Subcommands of `python -m lib_animlong`; each module has add_arguments(parser) and run(args)."""
