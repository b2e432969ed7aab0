"""The `tv3dg` command line: a thin dispatcher over one module per subcommand.

Each module in `tv3dg.commands` exposes `register(subparsers)`, which adds its parser and sets
`func` to a callable taking the parsed arguments. A `UserError` becomes one line on stderr and
exit code 2; Ctrl-C exits with 130. Every command takes `--verbose`, which lets the libraries'
own loading notices through (`tv3dg.console`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tv3dg import __version__
from tv3dg.commands.arguments import IntermixedParser
from tv3dg.commands.reference import subcommands
from tv3dg.console import set_verbose, verbose
from tv3dg.errors import UserError

COMMAND_MODULES = ("render", "convert", "playground", "mini", "generate", "doctor", "batch", "app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tv3dg", description="Text + visual prompt to 3D Gaussian Splatting.")
    parser.add_argument("--version", action="version", version=f"tv3dg {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=IntermixedParser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"tv3dg.commands.{name}").register(subparsers)
    for _, command in subcommands(parser):
        command.add_argument("--verbose", action="store_true",
                             help="also show the notices and progress bars of diffusers, transformers and huggingface_hub")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_verbose(args.verbose or verbose())
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
