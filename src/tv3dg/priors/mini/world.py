"""The procedural mini world: coloured, patterned primitives rendered by sphere tracing.

It is the ground truth the mini prior is trained on and every test and benchmark is scored
against. An object is (shape, colour, pattern); it sits at the origin, fits inside the unit
sphere (radius <= 0.95 world units), faces +Z and is lit by two lights fixed in the world, so
shading changes with the camera exactly as it would for a baked 3D asset. Cameras are
`tv3dg.render.cameras.Cameras`, so elevation/azimuth mean the same thing as everywhere else.
Images: white background, `rgb` composited, `alpha` coverage and `depth` = camera-frame z of
the surface (0 where empty), all supersampled and box-filtered to the output size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from tv3dg.render.cameras import Cameras, OrbitRanges, orbit_cameras

SHAPES = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid")
COLOURS = {
    "red": (0.86, 0.12, 0.10),
    "orange": (0.98, 0.52, 0.05),
    "yellow": (0.95, 0.85, 0.10),
    "green": (0.15, 0.68, 0.18),
    "cyan": (0.10, 0.78, 0.85),
    "blue": (0.12, 0.25, 0.88),
    "purple": (0.50, 0.15, 0.72),
    "pink": (0.98, 0.50, 0.72),
}
COLOUR_NAMES = tuple(COLOURS)
PATTERNS = ("plain", "striped", "checkered")
SECOND_COLOUR = (0.16, 0.16, 0.18)  # the dark second colour of stripes and checks
BOUND_RADIUS = 1.0  # every object lies inside this sphere around the origin

WORLD_ORBIT = OrbitRanges(elevation_deg=(-15.0, 60.0), azimuth_deg=(-180.0, 180.0), radius=(3.0, 3.5), fov_deg=(35.0, 45.0))
"""Cameras the prior is trained on: the 3D pipeline's default orbit, with a wider elevation."""

_KEY_LIGHT = F.normalize(torch.tensor([0.45, 0.75, 0.55]), dim=0)
_FILL_LIGHT = F.normalize(torch.tensor([-0.6, 0.15, -0.7]), dim=0)
_STRIPE_WIDTH = 0.22
_CHECK_SIZE = 0.32


@dataclass(frozen=True)
class WorldObject:
    """Attribute indices into SHAPES, COLOUR_NAMES and PATTERNS."""

    shape: int
    colour: int
    pattern: int

    @property
    def names(self) -> tuple[str, str, str]:
        return SHAPES[self.shape], COLOUR_NAMES[self.colour], PATTERNS[self.pattern]


@dataclass
class WorldRender:
    rgb: Tensor  # [B, 3, H, W] in [0, 1], white background
    alpha: Tensor  # [B, 1, H, W] coverage in [0, 1]
    depth: Tensor  # [B, 1, H, W] camera-frame z of the surface, coverage-weighted mean, 0 where empty


def _length2(x: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y)


def _sdf_sphere(p: Tensor) -> Tensor:
    return p.norm(dim=-1) - 0.8


def _sdf_cube(p: Tensor) -> Tensor:
    q = p.abs() - 0.52
    return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)


def _sdf_cylinder(p: Tensor) -> Tensor:
    d = torch.stack([_length2(p[..., 0], p[..., 2]) - 0.62, p[..., 1].abs() - 0.62], dim=-1)
    return d.clamp(min=0).norm(dim=-1) + d.max(dim=-1).values.clamp(max=0)


def _sdf_cone(p: Tensor) -> Tensor:
    """Cone with its base (radius 0.72) at y=-0.62 and its apex at y=+0.72 (exact distance)."""
    base, height = 0.72, 1.34
    y = p[..., 1] + 0.62
    r = _length2(p[..., 0], p[..., 2])
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


def _sdf_torus(p: Tensor) -> Tensor:
    """A standing ring in the XY plane: the hole is seen from the front (+Z) and the back."""
    q = torch.stack([_length2(p[..., 0], p[..., 1]) - 0.6, p[..., 2]], dim=-1)
    return q.norm(dim=-1) - 0.27


def _sdf_pyramid(p: Tensor) -> Tensor:
    """Square pyramid, base half-width 0.66 at y=-0.6, apex at y=+0.7 (conservative bound)."""
    half, height = 0.66, 1.3
    y = p[..., 1] + 0.6
    slope = torch.tensor(height / half)
    norm = torch.sqrt(1 + slope * slope)
    side_x = (slope * p[..., 0].abs() + y - height) / norm
    side_z = (slope * p[..., 2].abs() + y - height) / norm
    return torch.maximum(torch.maximum(side_x, side_z), -y)


_SDFS = (_sdf_sphere, _sdf_cube, _sdf_cylinder, _sdf_cone, _sdf_torus, _sdf_pyramid)


def shape_sdf(shape: int, points: Tensor) -> Tensor:
    """Signed distance (negative inside) of `points` [..., 3] to shape `shape`, in world units."""
    return _SDFS[shape](points)


def surface_albedo(colour: Tensor, pattern: Tensor, points: Tensor) -> Tensor:
    """Albedo [N, 3] at surface points [N, 3] for per-point colour index and pattern index [N]."""
    base = torch.tensor(list(COLOURS.values()))[colour]
    stripes = torch.floor(points[:, 1] / _STRIPE_WIDTH).long() % 2 == 1
    checks = torch.floor(points / _CHECK_SIZE).long().sum(dim=-1) % 2 == 1
    dark = torch.where(pattern == 1, stripes, torch.where(pattern == 2, checks, torch.zeros_like(stripes)))
    return torch.where(dark.unsqueeze(-1), torch.tensor(SECOND_COLOUR), base)


def shade(albedo: Tensor, normals: Tensor) -> Tensor:
    """Two fixed world lights plus ambient: bright enough on every side to keep the colour legible."""
    key = (normals @ _KEY_LIGHT).clamp(min=0)
    fill = (normals @ _FILL_LIGHT).clamp(min=0)
    return (albedo * (0.42 + 0.5 * key + 0.22 * fill).unsqueeze(-1)).clamp(0, 1)


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


def render_objects(objects: list[WorldObject], cameras: Cameras, supersample: int = 3) -> WorldRender:
    """Render one object per camera (len(objects) == len(cameras)) at the cameras' image size."""
    if len(objects) != len(cameras):
        raise ValueError(f"{len(objects)} objects for {len(cameras)} cameras")
    cams = cameras.to("cpu", torch.float32)
    batch, height, width = len(cams), cams.height, cams.width
    hs, ws = height * supersample, width * supersample
    rays = supersampled_rays(cams, supersample)
    origins, dirs, z_scale = rays.origins, rays.dirs, rays.z_scale

    colour = torch.zeros(batch, dirs.shape[1], 3)
    alpha = torch.zeros(batch, dirs.shape[1])
    depth = torch.zeros(batch, dirs.shape[1])
    shapes = torch.tensor([o.shape for o in objects])
    for shape in shapes.unique().tolist():
        rows = (shapes == shape).nonzero().squeeze(-1)
        o = origins[rows].reshape(-1, 3)
        d = dirs[rows].reshape(-1, 3)
        def sdf(p: Tensor, shape: int = shape) -> Tensor:
            return shape_sdf(shape, p)

        t, hit = sphere_trace(sdf, o, d)
        points = o[hit] + t[hit, None] * d[hit]
        per_ray_obj = rows.repeat_interleave(dirs.shape[1])[hit]
        col_idx = torch.tensor([objects[i].colour for i in per_ray_obj.tolist()], dtype=torch.long)
        pat_idx = torch.tensor([objects[i].pattern for i in per_ray_obj.tolist()], dtype=torch.long)
        shaded = shade(surface_albedo(col_idx, pat_idx, points), sdf_normals(sdf, points))
        flat_colour = torch.zeros(o.shape[0], 3)
        flat_colour[hit] = shaded
        flat_depth = torch.zeros(o.shape[0])
        flat_depth[hit] = t[hit] / z_scale[rows].reshape(-1)[hit]
        colour[rows] = flat_colour.reshape(len(rows), -1, 3)
        alpha[rows] = hit.float().reshape(len(rows), -1)
        depth[rows] = flat_depth.reshape(len(rows), -1)

    def pool(x: Tensor) -> Tensor:
        return F.avg_pool2d(x.reshape(batch, hs, ws, -1).permute(0, 3, 1, 2), supersample)

    a = pool(alpha.unsqueeze(-1))
    rgb = pool(colour * alpha.unsqueeze(-1)) + (1 - a)
    mean_depth = pool((depth * alpha).unsqueeze(-1)) / a.clamp(min=1e-6)
    depth = torch.where(a > 0, mean_depth, torch.zeros_like(a))
    return WorldRender(rgb=rgb.clamp(0, 1).contiguous(), alpha=a.contiguous(), depth=depth.contiguous())


def random_objects(n: int, generator: torch.Generator | None = None) -> list[WorldObject]:
    """Uniformly random attributes."""
    s = torch.randint(len(SHAPES), (n,), generator=generator).tolist()
    c = torch.randint(len(COLOUR_NAMES), (n,), generator=generator).tolist()
    p = torch.randint(len(PATTERNS), (n,), generator=generator).tolist()
    return [WorldObject(*attrs) for attrs in zip(s, c, p)]


def random_cameras(n: int, size: int, generator: torch.Generator | None = None) -> Cameras:
    """Independent random world cameras (no azimuth stratification: each view stands alone)."""
    def uniform(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    r = WORLD_ORBIT
    return orbit_cameras(uniform(*r.elevation_deg), uniform(*r.azimuth_deg), uniform(*r.radius), uniform(*r.fov_deg), size)


__all__ = [
    "SHAPES", "COLOURS", "COLOUR_NAMES", "PATTERNS", "WORLD_ORBIT", "WorldObject", "WorldRender",
    "shape_sdf", "surface_albedo", "shade", "render_objects", "random_objects", "random_cameras",
]
