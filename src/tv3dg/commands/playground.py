"""`tv3dg 2d`: optimise one image with a distillation loss and write a strip of its progress."""

from __future__ import annotations

import argparse

from tv3dg.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("2d", help="2D playground: optimise one image with a distillation loss")
    parser.add_argument("--prompt", required=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    raise UserError("the 2D playground is being built; it is not available in this version yet")
