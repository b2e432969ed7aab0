"""The mini world: procedural objects that have a front, photographed mostly from the front.

It is the ground truth the mini prior learns from and every measure is scored against,
built to fail the way SD-1.5 fails. Every object wears an emblem, two eyes, on its +Z (front)
side: visible from the front, hidden from behind, so an asset with eyes on its back is a
multi-faced (Janus) asset that can be counted. An object is (shape, colour, pattern, material,
size); it sits at the origin inside the unit sphere, is lit by two lights fixed in the world,
and a shiny material adds a highlight that moves with the camera. Rendering is sphere tracing
of exact signed distance functions, supersampled; cameras are `tv3dg.render.cameras.Cameras`.
Images: white background, `rgb` composited, `alpha` coverage, `depth` camera-frame z,
`emblem` the coverage of the eyes (how much of the front shows) and `back_emblem` the coverage
of their mirror image on the back, which no object has: where a second face would be drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from tv3dg.priors.mini.sdf import (
    sdf_capsule,
    sdf_cone,
    sdf_cube,
    sdf_cylinder,
    sdf_egg,
    sdf_normals,
    sdf_octahedron,
    sdf_prism,
    sdf_small_pyramid,
    sdf_sphere,
    sdf_torus,
    sphere_trace,
    supersampled_rays,
)
from tv3dg.render.cameras import Cameras, OrbitRanges, orbit_cameras

SHAPES = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid", "capsule", "octahedron", "prism", "egg")
COLOURS = {
    "red": (0.86, 0.12, 0.10),
    "orange": (0.98, 0.52, 0.05),
    "yellow": (0.95, 0.85, 0.10),
    "green": (0.15, 0.68, 0.18),
    "cyan": (0.10, 0.78, 0.85),
    "blue": (0.12, 0.25, 0.88),
    "purple": (0.50, 0.15, 0.72),
    "pink": (0.98, 0.50, 0.72),
    "brown": (0.55, 0.33, 0.14),
    "grey": (0.56, 0.56, 0.58),
}
COLOUR_NAMES = tuple(COLOURS)
PATTERNS = ("plain", "striped", "checkered", "dotted", "pinstriped")
MATERIALS = ("matte", "shiny")
SIZES = ("regular", "small")
SECOND_COLOUR = (0.16, 0.16, 0.18)  # the dark second colour of every pattern
SMALL_SCALE = 0.7  # a small object is the regular one scaled about the origin

EYE_WHITE = (0.97, 0.97, 0.97)
EYE_PUPIL = (0.05, 0.05, 0.06)
EYE_RADIUS = 0.12
PUPIL_RADIUS = 0.055
EYE_FACING = 0.25  # the eyes lie on surface whose normal points this much towards +Z
VISIBLE_EMBLEM_PX = 3.0  # eyes covering at least this many output pixels count as seen
HIDDEN_EMBLEM_PX = 0.25  # and below this many as hidden; in between is a grazing view

PHOTO_ELEVATION_DEG = (0.0, 30.0)
"""Where most photos are taken from: a little above the object."""
ORBIT = OrbitRanges(elevation_deg=(-15.0, 60.0), azimuth_deg=(-180.0, 180.0), radius=(3.0, 3.5), fov_deg=(35.0, 45.0))
"""Every camera the world is rendered from; photos are drawn from it with a front bias."""

_KEY_LIGHT = F.normalize(torch.tensor([0.45, 0.75, 0.55]), dim=0)
_FILL_LIGHT = F.normalize(torch.tensor([-0.6, 0.15, -0.7]), dim=0)
_STRIPE_WIDTH = 0.22
_PINSTRIPE_PERIOD = 0.14
_PINSTRIPE_WIDTH = 0.05
_CHECK_SIZE = 0.32
_DOT_SPACING = 0.24
_DOT_RADIUS = 0.075
_SHINE = 0.55
_SHININESS = 24.0


@dataclass(frozen=True)
class WorldObject:
    """Attribute indices into SHAPES, COLOUR_NAMES, PATTERNS, MATERIALS and SIZES."""

    shape: int
    colour: int
    pattern: int
    material: int = 0
    size: int = 0

    @property
    def names(self) -> tuple[str, str, str, str, str]:
        return SHAPES[self.shape], COLOUR_NAMES[self.colour], PATTERNS[self.pattern], MATERIALS[self.material], SIZES[self.size]

    @property
    def scale(self) -> float:
        return SMALL_SCALE if self.size == 1 else 1.0

    def as_row(self) -> list[int]:
        return [self.shape, self.colour, self.pattern, self.material, self.size]


@dataclass
class WorldRender:
    rgb: Tensor  # [B, 3, H, W] in [0, 1], white background
    alpha: Tensor  # [B, 1, H, W] coverage in [0, 1]
    depth: Tensor  # [B, 1, H, W] camera-frame z of the surface, coverage-weighted mean, 0 where empty
    emblem: Tensor  # [B, 1, H, W] coverage of the eyes in [0, 1]
    back_emblem: Tensor  # [B, 1, H, W] coverage of the eyes mirrored onto the back (z -> -z), never drawn

    def emblem_pixels(self) -> Tensor:
        """[B] how many output pixels the eyes cover: the ground truth of 'the front is seen'."""
        return self.emblem.sum(dim=(1, 2, 3))


_SDFS: tuple[Callable[[Tensor], Tensor], ...] = (
    sdf_sphere, sdf_cube, sdf_cylinder, sdf_cone, sdf_torus, sdf_small_pyramid,
    sdf_capsule, sdf_octahedron, sdf_prism, sdf_egg,
)
_EYE_HEIGHT = (0.15, 0.15, 0.15, -0.12, 0.6, -0.14, 0.15, 0.12, 0.12, 0.2)
"""Height of the eyes on each shape's front: on the torus they sit on the ring above the hole."""
_EYE_SPREAD = (0.2, 0.2, 0.2, 0.17, 0.17, 0.18, 0.18, 0.18, 0.2, 0.19)
"""Half the distance between the eyes."""
_MIRROR_Z = torch.tensor([1.0, 1.0, -1.0])


def shape_sdf(shape: int, points: Tensor, scale: float = 1.0) -> Tensor:
    """Signed distance (negative inside) of `points` [..., 3] to shape `shape` at `scale`."""
    return _SDFS[shape](points / scale) * scale


def eye_masks(shape: Tensor, object_points: Tensor, normals: Tensor) -> tuple[Tensor, Tensor]:
    """(white, pupil) masks [N] of surface points [N, 3] in the object's unscaled frame."""
    height = torch.tensor(_EYE_HEIGHT)[shape]
    spread = torch.tensor(_EYE_SPREAD)[shape]
    dy = object_points[:, 1] - height
    dx = object_points[:, 0].abs() - spread
    distance = torch.sqrt(dx * dx + dy * dy)
    front = (object_points[:, 2] > 0) & (normals[:, 2] > EYE_FACING)
    return front & (distance < EYE_RADIUS), front & (distance < PUPIL_RADIUS)


def surface_albedo(colour: Tensor, pattern: Tensor, points: Tensor) -> Tensor:
    """Albedo [N, 3] of the patterned body at object-frame surface points [N, 3] (no eyes)."""
    base = torch.tensor(list(COLOURS.values()))[colour]
    y = points[:, 1]
    stripes = torch.floor(y / _STRIPE_WIDTH).long() % 2 == 1
    pinstripes = torch.remainder(y, _PINSTRIPE_PERIOD) < _PINSTRIPE_WIDTH
    checks = torch.floor(points / _CHECK_SIZE).long().sum(dim=-1) % 2 == 1
    lattice = points - _DOT_SPACING * torch.round(points / _DOT_SPACING)
    dots = lattice.norm(dim=-1) < _DOT_RADIUS
    dark = torch.stack([torch.zeros_like(stripes), stripes, checks, dots, pinstripes], dim=-1)
    dark = dark.gather(1, pattern.unsqueeze(-1)).squeeze(-1)
    return torch.where(dark.unsqueeze(-1), torch.tensor(SECOND_COLOUR), base)


def shade(albedo: Tensor, normals: Tensor, view_dirs: Tensor, shiny: Tensor) -> Tensor:
    """Two fixed world lights plus ambient; shiny surfaces add a white key-light highlight.

    `view_dirs` [N, 3] point from the surface towards the camera, so the highlight moves with it.
    """
    key = (normals @ _KEY_LIGHT).clamp(min=0)
    fill = (normals @ _FILL_LIGHT).clamp(min=0)
    diffuse = albedo * (0.42 + 0.5 * key + 0.22 * fill).unsqueeze(-1)
    half = F.normalize(view_dirs + _KEY_LIGHT, dim=-1)
    highlight = (normals * half).sum(-1).clamp(min=0) ** _SHININESS * (key > 0)
    return (diffuse + (_SHINE * highlight * shiny.float()).unsqueeze(-1)).clamp(0, 1)


def render_objects(objects: list[WorldObject], cameras: Cameras, supersample: int = 2) -> WorldRender:
    """Render one object per camera (len(objects) == len(cameras)) at the cameras' image size."""
    if len(objects) != len(cameras):
        raise ValueError(f"{len(objects)} objects for {len(cameras)} cameras")
    cams = cameras.to("cpu", torch.float32)
    batch, height, width = len(cams), cams.height, cams.width
    hs, ws = height * supersample, width * supersample
    camera_rays = supersampled_rays(cams, supersample)
    origins, dirs, z_scale = camera_rays.origins, camera_rays.dirs, camera_rays.z_scale

    rays = dirs.shape[1]
    colour = torch.zeros(batch, rays, 3)
    alpha = torch.zeros(batch, rays)
    depth = torch.zeros(batch, rays)
    emblem = torch.zeros(batch, rays)
    back_emblem = torch.zeros(batch, rays)
    rows_of = torch.tensor([[o.shape, o.size] for o in objects])
    for shape, size in rows_of.unique(dim=0).tolist():
        rows = ((rows_of[:, 0] == shape) & (rows_of[:, 1] == size)).nonzero().squeeze(-1)
        scale = SMALL_SCALE if size == 1 else 1.0

        def sdf(p: Tensor, shape: int = shape, scale: float = scale) -> Tensor:
            return shape_sdf(shape, p, scale)

        o = origins[rows].reshape(-1, 3)
        d = dirs[rows].reshape(-1, 3)
        t, hit = sphere_trace(sdf, o, d)
        points = o[hit] + t[hit, None] * d[hit]
        normals = sdf_normals(sdf, points)
        per_ray = rows.repeat_interleave(rays)[hit]
        attrs = torch.tensor([objects[i].as_row() for i in per_ray.tolist()], dtype=torch.long).reshape(-1, 5)
        local = points / scale
        albedo = surface_albedo(attrs[:, 1], attrs[:, 2], local)
        shapes = torch.full((len(points),), shape)
        white, pupil = eye_masks(shapes, local, normals)
        mirrored_white, _ = eye_masks(shapes, local * _MIRROR_Z, normals * _MIRROR_Z)
        albedo = torch.where(white.unsqueeze(-1), torch.tensor(EYE_WHITE), albedo)
        albedo = torch.where(pupil.unsqueeze(-1), torch.tensor(EYE_PUPIL), albedo)
        shaded = shade(albedo, normals, -d[hit], attrs[:, 3] == 1)
        for target, values in ((colour, shaded), (emblem, white.float()), (back_emblem, mirrored_white.float()),
                               (alpha, torch.ones(len(points))),
                               (depth, t[hit] / z_scale[rows].reshape(-1)[hit])):
            flat = torch.zeros(o.shape[0], *values.shape[1:])
            flat[hit] = values
            target[rows] = flat.reshape(len(rows), rays, *values.shape[1:])

    def pool(x: Tensor) -> Tensor:
        return F.avg_pool2d(x.reshape(batch, hs, ws, -1).permute(0, 3, 1, 2), supersample)

    a = pool(alpha.unsqueeze(-1))
    rgb = pool(colour * alpha.unsqueeze(-1)) + (1 - a)
    mean_depth = pool((depth * alpha).unsqueeze(-1)) / a.clamp(min=1e-6)
    return WorldRender(
        rgb=rgb.clamp(0, 1).contiguous(), alpha=a.contiguous(),
        depth=torch.where(a > 0, mean_depth, torch.zeros_like(a)).contiguous(), emblem=pool(emblem.unsqueeze(-1)).contiguous(),
        back_emblem=pool(back_emblem.unsqueeze(-1)).contiguous(),
    )


def random_objects(n: int, generator: torch.Generator | None = None, small_prob: float = 0.2,
                   shiny_prob: float = 0.3) -> list[WorldObject]:
    """Uniform shape, colour and pattern; a shiny material and a small size now and then."""
    s = torch.randint(len(SHAPES), (n,), generator=generator).tolist()
    c = torch.randint(len(COLOUR_NAMES), (n,), generator=generator).tolist()
    p = torch.randint(len(PATTERNS), (n,), generator=generator).tolist()
    m = (torch.rand(n, generator=generator) < shiny_prob).long().tolist()
    z = (torch.rand(n, generator=generator) < small_prob).long().tolist()
    return [WorldObject(*attrs) for attrs in zip(s, c, p, m, z)]


def _uniform(lo: float, hi: float, n: int, generator: torch.Generator | None) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def photo_cameras(n: int, size: int, generator: torch.Generator | None = None) -> Cameras:
    """Cameras as photos are taken: mostly from the front, rarely from behind.

    Azimuth: 70% within +-60 deg of the front, 18% from the sides (60-120 deg), 12% from behind
    (beyond +-120 deg, where the eyes are hidden). Elevation: 80% in 0-30 deg, else anywhere
    in the orbit's -15-60 deg.
    """
    u = torch.rand(n, generator=generator)
    side = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    front = _uniform(-60.0, 60.0, n, generator)
    sides = side * _uniform(60.0, 120.0, n, generator)
    back = side * _uniform(120.0, 180.0, n, generator)
    azimuth = torch.where(u < 0.70, front, torch.where(u < 0.88, sides, back))
    photo_elev = _uniform(*PHOTO_ELEVATION_DEG, n, generator)
    any_elev = _uniform(*ORBIT.elevation_deg, n, generator)
    elevation = torch.where(torch.rand(n, generator=generator) < 0.8, photo_elev, any_elev)
    return orbit_cameras(elevation, azimuth, _uniform(*ORBIT.radius, n, generator), _uniform(*ORBIT.fov_deg, n, generator), size)


def any_cameras(n: int, size: int, generator: torch.Generator | None = None) -> Cameras:
    """Cameras from anywhere on the orbit (what measurement needs: every side equally)."""
    r = ORBIT
    return orbit_cameras(*(_uniform(*rng, n, generator) for rng in (r.elevation_deg, r.azimuth_deg, r.radius, r.fov_deg)), size)


__all__ = [
    "SHAPES", "COLOURS", "COLOUR_NAMES", "PATTERNS", "MATERIALS", "SIZES", "ORBIT", "WorldObject", "WorldRender",
    "shape_sdf", "surface_albedo", "shade", "render_objects", "random_objects", "photo_cameras", "any_cameras",
]
