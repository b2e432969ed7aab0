"""`tv3dg render ASSET.ply --out turntable.mp4|.gif`: a turntable video and a views.png contact sheet.

The cameras orbit the origin (where tv3dg puts its objects) starting from the front view (+Z).
With `--radius auto` the distance is chosen so that the asset's bounding sphere fills the frame.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from tv3dg.errors import UserError
from tv3dg.gaussians.model import Gaussians
from tv3dg.render.cameras import bounding_radius

NAMED_BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render", help="render a 3DGS .ply to a turntable video and views.png",
        description="Render a 3D Gaussian Splatting .ply (Inria layout) to a turntable video, plus a "
        "views.png contact sheet beside it.",
    )
    parser.add_argument("asset", type=Path, help="a Gaussian file: .ply, .compressed.ply, .spz, .splat or .glb")
    parser.add_argument("--out", type=Path, required=True, help="output video: .mp4 or .gif")
    parser.add_argument("--frames", type=int, default=60, help="frames in the turntable (default 60)")
    parser.add_argument("--resolution", type=int, default=256, help="frame width and height in pixels (default 256)")
    parser.add_argument("--elevation", type=float, default=15.0, help="camera elevation in degrees (default 15)")
    parser.add_argument("--radius", default="auto", help="camera distance, or 'auto' to frame the asset (default)")
    parser.add_argument("--fov", type=float, default=40.0, help="vertical field of view in degrees (default 40)")
    parser.add_argument("--background", default="white", help="white, black or R,G,B in 0..1 (default white)")
    parser.add_argument("--views", type=int, default=8, help="views in views.png (default 8)")
    parser.add_argument("--fps", type=int, default=24, help="video frame rate (default 24)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from tv3dg.export.video import VIDEO_SUFFIXES, render_turntable, save_contact_sheet, write_turntable
    from tv3dg.gaussians.formats import load

    if args.out.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--out '{args.out}' must end in .mp4 or .gif")
    for name in ("frames", "resolution", "views", "fps"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if not 1.0 <= args.fov <= 170.0:
        raise UserError(f"--fov must be between 1 and 170 degrees, got {args.fov}")
    background = parse_background(args.background)
    gaussians = load(args.asset)
    if torch.cuda.is_available():
        gaussians = gaussians.cuda()
    radius = parse_radius(args.radius, gaussians, args.fov)

    common = dict(gaussians=gaussians, resolution=args.resolution, elevation=args.elevation, radius=radius,
                  fov=args.fov, background=background.to(gaussians.means.device))
    frames = render_turntable(n_frames=args.frames, description="turntable", **common)
    video = write_turntable(args.out, frames, fps=args.fps)
    views = list(render_turntable(n_frames=args.views, description="views", **common))
    sheet = save_contact_sheet(args.out.with_name("views.png"), views, columns=min(4, args.views))
    print(f"wrote {video} ({args.frames} frames, {args.resolution}x{args.resolution}) and {sheet}")


def parse_background(text: str) -> torch.Tensor:
    """'white', 'black' or 'R,G,B' with components in 0..1."""
    if text.lower() in NAMED_BACKGROUNDS:
        return torch.tensor(NAMED_BACKGROUNDS[text.lower()])
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise UserError(f"--background '{text}' is not white, black or R,G,B with values in 0..1 (e.g. 0.5,0.5,0.5)")
    return torch.tensor(values)


def parse_radius(text: str, gaussians: Gaussians, fov: float) -> float:
    """A positive number, or 'auto': far enough that the asset's bounding sphere fits the view."""
    if text == "auto":
        return auto_radius(gaussians, fov)
    try:
        radius = float(text)
    except ValueError:
        radius = -1.0
    if not radius > 0 or not math.isfinite(radius):
        raise UserError(f"--radius '{text}' must be a positive number or 'auto'")
    return radius


def auto_radius(gaussians: Gaussians, fov: float, margin: float = 1.1) -> float:
    """Distance at which the asset's bounding sphere (`bounding_radius`) fills the frame."""
    return bounding_radius(gaussians) * margin / math.sin(math.radians(fov) / 2)
