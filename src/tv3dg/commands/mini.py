"""`tv3dg mini ...`: build, train and evaluate the bundled mini prior over the procedural world."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mini", help="train or evaluate the bundled mini prior")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from tv3dg.errors import UserError

    raise UserError("tv3dg mini is not available yet in this build")
