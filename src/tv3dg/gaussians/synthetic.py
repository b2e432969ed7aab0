"""A procedural textured object as Gaussians: the bundled sample asset, reproducible bit for bit.

A beach ball: eight gores around the vertical axis, coloured ones (front blue, right side
green, back red, left side yellow) between white ones, and white caps, so a turntable visibly
turns and each side of the object is told apart by its colour. The texture is a function of the
surface normal, so an analytic ray-caster can render the same object exactly (the fitting test
does). Points lie on a Fibonacci lattice: no random numbers, the same file on every machine.

Regenerate the packaged file with `python -m tv3dg.gaussians.synthetic src/tv3dg/assets/sample.ply`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch import Tensor

from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.sh import rgb_to_sh_dc

SAMPLE_ASSET = Path(__file__).resolve().parents[1] / "assets" / "sample.ply"
BALL_RADIUS = 0.6
WHITE = [0.93, 0.92, 0.88]
RED, YELLOW, BLUE, GREEN = [0.90, 0.15, 0.15], [0.98, 0.80, 0.10], [0.15, 0.40, 0.90], [0.20, 0.70, 0.30]
# Gore k is centred on azimuth k * 45 - 180 degrees: gore 4 faces the front (+Z), gore 6 the right (+X).
GORE_COLOURS = torch.tensor([RED, WHITE, YELLOW, WHITE, BLUE, WHITE, GREEN, WHITE])
CAP_HEIGHT = 0.8  # |normal.y| above this is the white cap


def beach_ball_colour(normals: Tensor) -> Tensor:
    """RGB [..., 3] of the ball's surface at unit `normals` [..., 3] (world +Y up, front +Z)."""
    azimuth = torch.atan2(normals[..., 0], normals[..., 2])  # 0 at the front, + towards +X
    gores = len(GORE_COLOURS)
    gore = torch.floor((azimuth + math.pi) / (2 * math.pi) * gores + 0.5).long() % gores
    colour = GORE_COLOURS.to(normals)[gore]
    cap = (normals[..., 1].abs() > CAP_HEIGHT)[..., None]
    return torch.where(cap, torch.tensor(WHITE).to(normals), colour)


def fibonacci_sphere(n: int) -> Tensor:
    """n nearly uniform unit vectors [n, 3] (deterministic)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    y = 1.0 - 2.0 * i / n
    ring = torch.sqrt(1.0 - y * y)
    theta = math.pi * (3.0 - math.sqrt(5.0)) * i
    return torch.stack([ring * torch.sin(theta), y, ring * torch.cos(theta)], dim=-1).float()


def quaternion_z_to(normals: Tensor) -> Tensor:
    """Unit quaternions (w, x, y, z) rotating +Z onto each unit normal."""
    w = 1.0 + normals[:, 2]
    quats = torch.stack([w, -normals[:, 1], normals[:, 0], torch.zeros_like(w)], dim=-1)
    flipped = w < 1e-6  # normal = -Z: half turn about X
    quats[flipped] = torch.tensor([0.0, 1.0, 0.0, 0.0])
    return torch.nn.functional.normalize(quats, dim=-1)


def beach_ball(n: int = 4000, radius: float = BALL_RADIUS) -> Gaussians:
    """`n` flat, nearly opaque Gaussians tiling the ball's surface, coloured by its texture."""
    normals = fibonacci_sphere(n)
    spacing = math.sqrt(4 * math.pi * radius**2 / n)
    scale = torch.tensor([0.7 * spacing, 0.7 * spacing, 0.1 * spacing])
    return Gaussians(
        means=normals * radius,
        log_scales=torch.log(scale).expand(n, 3).clone(),
        quats=quaternion_z_to(normals),
        opacity_logits=torch.full((n, 1), math.log(0.95 / 0.05)),
        sh_dc=rgb_to_sh_dc(beach_ball_colour(normals)).reshape(n, 1, 3),
        sh_rest=torch.zeros(n, 0, 3),
    )


def main(argv: list[str] | None = None) -> None:
    from tv3dg.gaussians.ply import save_ply

    parser = argparse.ArgumentParser(description="write the sample beach-ball asset as a 3DGS .ply")
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=4000)
    args = parser.parse_args(argv)
    save_ply(args.out, beach_ball(args.count))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
