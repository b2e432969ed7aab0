"""The `tv3dg` command line: a thin dispatcher over one module per subcommand.

Each module in `tv3dg.commands` exposes `register(subparsers)`, which adds its parser and sets
`func` to a callable taking the parsed arguments. A `UserError` becomes one line on stderr and
exit code 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tv3dg import __version__
from tv3dg.errors import UserError

COMMAND_MODULES = ("render", "playground", "mini", "generate", "batch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tv3dg", description="Text + visual prompt to 3D Gaussian Splatting.")
    parser.add_argument("--version", action="version", version=f"tv3dg {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"tv3dg.commands.{name}").register(subparsers)
    return parser


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parse_args`, except that key=value overrides may also come after options (intermixed):
    argparse fills a `nargs="*"` positional from one run of arguments only and leaves the rest over."""
    args, extra = parser.parse_known_args(argv)
    if extra and (not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a for a in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def quiet_libraries() -> None:
    """Keep diffusers/transformers loading chatter (progress bars, info warnings) off the terminal:
    our own progress bars and one-line errors are what a user should see."""
    import diffusers
    import transformers

    for library in (diffusers, transformers):
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    parser = build_parser()
    args = parse_arguments(parser, argv)
    try:
        args.func(args)
    except UserError as err:
        print(f"tv3dg: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tv3dg: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
