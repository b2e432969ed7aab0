"""Signed distance functions of the world's primitives, and the sphere tracer that renders them.

Distances are in world units, negative inside; every primitive is centred at the origin and
lies inside the sphere of radius `BOUND_RADIUS`, where tracing starts. Rays come from
`tv3dg.render.cameras.Cameras`, so a render lines up pixel for pixel with the rasteriser's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from tv3dg.render.cameras import Cameras

BOUND_RADIUS = 1.0  # every object lies inside this sphere around the origin


def length2(x: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y)


def sdf_sphere(p: Tensor) -> Tensor:
    return p.norm(dim=-1) - 0.8


def sdf_cube(p: Tensor) -> Tensor:
    q = p.abs() - 0.52
    return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)


def sdf_cylinder(p: Tensor) -> Tensor:
    d = torch.stack([length2(p[..., 0], p[..., 2]) - 0.62, p[..., 1].abs() - 0.62], dim=-1)
    return d.clamp(min=0).norm(dim=-1) + d.max(dim=-1).values.clamp(max=0)


def sdf_cone(p: Tensor) -> Tensor:
    """Cone with its base (radius 0.72) at y=-0.62 and its apex at y=+0.72 (exact distance)."""
    base, height = 0.72, 1.34
    y = p[..., 1] + 0.62
    r = length2(p[..., 0], p[..., 2])
    # distance in the (r, y) half-plane to the triangle (0,0)-(base,0)-(0,height)
    edge = torch.tensor([-base, height])
    rel = torch.stack([r - base, y], dim=-1)
    t = ((rel @ edge) / (edge @ edge)).clamp(0, 1)
    to_side = rel - t.unsqueeze(-1) * edge
    d_side = to_side.norm(dim=-1)
    d_base = torch.stack([(r - base).clamp(min=0), y], dim=-1).norm(dim=-1)
    inside = (y > 0) & (r * height + y * base < base * height)
    d = torch.minimum(d_side, d_base)
    return torch.where(inside, -d, d)


def sdf_torus(p: Tensor) -> Tensor:
    """A standing ring in the XY plane: the hole is seen from the front (+Z) and the back."""
    q = torch.stack([length2(p[..., 0], p[..., 1]) - 0.6, p[..., 2]], dim=-1)
    return q.norm(dim=-1) - 0.27


def sdf_pyramid(p: Tensor) -> Tensor:
    """Square pyramid, base half-width 0.66 at y=-0.6, apex at y=+0.7 (conservative bound)."""
    half, height = 0.66, 1.3
    y = p[..., 1] + 0.6
    slope = torch.tensor(height / half)
    norm = torch.sqrt(1 + slope * slope)
    side_x = (slope * p[..., 0].abs() + y - height) / norm
    side_z = (slope * p[..., 2].abs() + y - height) / norm
    return torch.maximum(torch.maximum(side_x, side_z), -y)


def sdf_capsule(p: Tensor) -> Tensor:
    """A standing pill: a segment from y=-0.42 to y=+0.42, radius 0.42."""
    y = p[..., 1].clamp(-0.42, 0.42)
    return torch.stack([p[..., 0], p[..., 1] - y, p[..., 2]], dim=-1).norm(dim=-1) - 0.42


def sdf_octahedron(p: Tensor) -> Tensor:
    """Regular octahedron, vertices 0.9 from the centre, turned 45 deg about Y (exact distance).

    Turned so that its two front faces look forward and up/down, not sideways: eyes on a
    sideways-looking face would be seen from behind the object.
    """
    s = 0.9
    c = 0.70710678
    q = torch.stack([c * (p[..., 0] + p[..., 2]), p[..., 1], c * (p[..., 2] - p[..., 0])], dim=-1).abs()
    m = q.sum(dim=-1) - s
    # the exact formula (Quilez): pick the axis ordering of the nearest face region
    qx, qy, qz = q[..., 0], q[..., 1], q[..., 2]
    conds = [3 * qx < m, 3 * qy < m, 3 * qz < m]
    perms = [torch.stack([qx, qy, qz], -1), torch.stack([qy, qz, qx], -1), torch.stack([qz, qx, qy], -1)]
    r = torch.where(conds[2].unsqueeze(-1), perms[2], q)
    r = torch.where(conds[1].unsqueeze(-1), perms[1], r)
    r = torch.where(conds[0].unsqueeze(-1), perms[0], r)
    k = (0.5 * (r[..., 2] - r[..., 1] + s)).clamp(0, s)
    exact = torch.stack([r[..., 0], r[..., 1] - s + k, r[..., 2] - k], dim=-1).norm(dim=-1)
    any_cond = conds[0] | conds[1] | conds[2]
    return torch.where(any_cond, exact, m * 0.57735027)


def sdf_prism(p: Tensor) -> Tensor:
    """A standing hexagonal prism: apothem 0.58 in XZ (a flat face towards +Z), half-height 0.6."""
    k = torch.tensor([-0.8660254, 0.5, 0.57735])
    x, z = p[..., 0].abs(), p[..., 2].abs()
    # fold into the first sector (flat face towards +Z)
    dot = (k[0] * x + k[1] * z).clamp(max=0)
    x = x - 2 * dot * k[0]
    z = z - 2 * dot * k[1]
    apothem = 0.58
    across = x - x.clamp(-k[2] * apothem, k[2] * apothem)
    out = z - apothem
    dx = torch.sqrt(across * across + out * out + 1e-12) * torch.sign(out)  # epsilon: finite gradient on a face
    dy = p[..., 1].abs() - 0.6
    d = torch.stack([dx, dy], dim=-1)
    return d.clamp(min=0).norm(dim=-1) + d.max(dim=-1).values.clamp(max=0)


def sdf_egg(p: Tensor) -> Tensor:
    """A standing ellipsoid, radii (0.58, 0.82, 0.58) (the usual bound, within a few % of exact)."""
    radii = torch.tensor([0.58, 0.82, 0.58])
    k0 = (p / radii).norm(dim=-1)
    k1 = (p / (radii * radii)).norm(dim=-1)
    return k0 * (k0 - 1.0) / k1.clamp(min=1e-9)


def sdf_small_pyramid(p: Tensor) -> Tensor:
    """`sdf_pyramid` at 0.88 size, so that its base corners lie inside the bound sphere."""
    return sdf_pyramid(p / 0.88) * 0.88


def sphere_trace(sdf: Callable[[Tensor], Tensor], origins: Tensor, dirs: Tensor, steps: int = 64,
                 tolerance: float = 2e-4) -> tuple[Tensor, Tensor]:
    """Ray distance and hit mask for rays [N, 3] against `sdf` (starting at the bound sphere)."""
    b = (origins * dirs).sum(-1)
    c = (origins * origins).sum(-1) - BOUND_RADIUS**2
    disc = b * b - c
    in_bound = disc > 0
    t = (-b - disc.clamp(min=0).sqrt()).clamp(min=0)
    t_far = -b + disc.clamp(min=0).sqrt()
    active = in_bound.clone()
    hit = torch.zeros_like(in_bound)
    for _ in range(steps):
        if not bool(active.any()):
            break
        idx = active.nonzero().squeeze(-1)
        d = sdf(origins[idx] + t[idx, None] * dirs[idx])
        t[idx] = t[idx] + d
        now_hit = d < tolerance
        hit[idx] = hit[idx] | now_hit
        active[idx] = ~now_hit & (t[idx] < t_far[idx])
    return t, hit


def sdf_normals(sdf: Callable[[Tensor], Tensor], points: Tensor, eps: float = 1e-3) -> Tensor:
    """Unit normals at points [N, 3] from central differences of `sdf`."""
    offsets = torch.eye(3) * eps
    grad = torch.stack([sdf(points + o) - sdf(points - o) for o in offsets], dim=-1)
    return F.normalize(grad, dim=-1)


@dataclass
class CameraRays:
    """One ray per supersampled pixel of each camera."""

    origins: Tensor  # [B, P, 3] camera centres
    dirs: Tensor  # [B, P, 3] unit directions in the world
    z_scale: Tensor  # [B, P] ray distance per unit of camera-frame depth


def supersampled_rays(cams: Cameras, supersample: int) -> CameraRays:
    """Rays through a `supersample` x `supersample` grid inside every pixel (row-major)."""
    batch, height, width = len(cams), cams.height, cams.width
    hs, ws = height * supersample, width * supersample
    jj, ii = torch.meshgrid(torch.arange(ws) + 0.5, torch.arange(hs) + 0.5, indexing="xy")
    u = jj.reshape(1, -1) / supersample
    v = ii.reshape(1, -1) / supersample
    dirs_cam = torch.stack(
        [(u - cams.cx[:, None]) / cams.fx[:, None], (v - cams.cy[:, None]) / cams.fy[:, None], torch.ones(batch, u.shape[1])],
        dim=-1,
    )  # [B, P, 3]
    rot = cams.world_to_cam[:, :3, :3]
    dirs = F.normalize(dirs_cam @ rot, dim=-1)  # row vectors: R^T d
    return CameraRays(cams.centers[:, None, :].expand_as(dirs), dirs, dirs_cam.norm(dim=-1))
