"""`tv3dg render ASSET.ply --out turntable.mp4|.gif`: a turntable video and a views.png contact sheet."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("render", help="render a 3DGS .ply to a turntable video and views.png")
    parser.add_argument("asset", help="a 3D Gaussian Splatting .ply (Inria layout)")
    parser.add_argument("--out", required=True, help="output video, .mp4 or .gif")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from tv3dg.errors import UserError

    raise UserError("tv3dg render is not available yet in this build")
