"""Cameras: one convention for the whole project.

World: right-handed, +Y up, the object at the origin, its front facing +Z.
Orbit: a camera at elevation `e` (degrees above the XZ plane) and azimuth `a` (degrees, from
+Z towards +X) sits at `r * (cos e sin a, sin e, cos e cos a)` and looks at the origin. So
azimuth 0 is the front view, 90 the object's right side (+X), 180 the back, and elevation 90 is
overhead.
Camera frame: OpenCV (x right, y down, z forward); `world_to_cam` maps world points into it.
Pixels: `u = fx * x / z + cx`, with the centre of pixel (i, j) at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tv3dg.gaussians.model import Gaussians


@dataclass
class Cameras:
    """A batch of B pinhole cameras sharing one image size."""

    world_to_cam: Tensor  # [B, 4, 4]
    fx: Tensor  # [B]
    fy: Tensor  # [B]
    cx: Tensor  # [B]
    cy: Tensor  # [B]
    width: int
    height: int
    elevation_deg: Tensor  # [B] (for view-dependent prompts and camera conditioning)
    azimuth_deg: Tensor  # [B]
    radius: Tensor  # [B]

    def __len__(self) -> int:
        return self.world_to_cam.shape[0]

    @property
    def device(self) -> torch.device:
        return self.world_to_cam.device

    @property
    def centers(self) -> Tensor:
        """Camera centres in world coordinates, [B, 3]."""
        rot = self.world_to_cam[:, :3, :3]
        trans = self.world_to_cam[:, :3, 3]
        return -(rot.transpose(1, 2) @ trans.unsqueeze(-1)).squeeze(-1)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Cameras":
        def move(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype or t.dtype)

        return Cameras(
            move(self.world_to_cam), move(self.fx), move(self.fy), move(self.cx), move(self.cy),
            self.width, self.height, move(self.elevation_deg), move(self.azimuth_deg), move(self.radius),
        )

    def __getitem__(self, index: int | slice | Tensor) -> "Cameras":
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(
            self.world_to_cam[index], self.fx[index], self.fy[index], self.cx[index], self.cy[index],
            self.width, self.height, self.elevation_deg[index], self.azimuth_deg[index], self.radius[index],
        )


def bounding_radius(gaussians: Gaussians, quantile: float = 0.99) -> float:
    """Radius of a sphere about the origin (where objects sit) holding `quantile` of the asset,
    counting each Gaussian to 2 sigma; a quantile, so that a few floaters do not shrink the object
    in a framed view."""
    with torch.no_grad():
        extent = gaussians.means.norm(dim=1) + 2.0 * gaussians.scales.max(dim=1).values
        return max(float(torch.quantile(extent.float().cpu(), quantile)), 1e-3)


def concat_cameras(first: Cameras, second: Cameras) -> Cameras:
    """One batch of both (of one image size), so that one rasterizer call renders them together."""
    if (first.width, first.height) != (second.width, second.height):
        raise ValueError(f"cameras of {first.width}x{first.height} and {second.width}x{second.height} pixels cannot share a batch")
    fields = ("world_to_cam", "fx", "fy", "cx", "cy", "elevation_deg", "azimuth_deg", "radius")
    joined = {name: torch.cat([getattr(first, name), getattr(second, name)]) for name in fields}
    return Cameras(width=first.width, height=first.height, **joined)


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """World-to-camera matrices [B, 4, 4] (OpenCV frame) for cameras at `eye` looking at `target`.

    `up` defaults to +Y; for a camera looking straight along +-Y the up vector falls back to -Z/+Z
    so that overhead views stay well defined (image top points to the object's back).
    """
    eye = eye.reshape(-1, 3)
    target = target.reshape(-1, 3).expand_as(eye)
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    if up is None:
        up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device)
    up = up.reshape(-1, 3).expand_as(eye)
    right = torch.linalg.cross(forward, up, dim=-1)
    degenerate = right.norm(dim=-1, keepdim=True) < 1e-6
    fallback_up = torch.tensor([0.0, 0.0, -1.0], dtype=eye.dtype, device=eye.device).expand_as(eye)
    fallback_up = torch.where(forward[:, 1:2] < 0, fallback_up, -fallback_up)
    right = torch.where(degenerate, torch.linalg.cross(forward, fallback_up, dim=-1), right)
    right = torch.nn.functional.normalize(right, dim=-1)
    down = torch.linalg.cross(forward, right, dim=-1)
    rot = torch.stack([right, down, forward], dim=1)  # rows: camera axes in world coordinates
    w2c = torch.zeros(eye.shape[0], 4, 4, dtype=eye.dtype, device=eye.device)
    w2c[:, :3, :3] = rot
    w2c[:, :3, 3] = -(rot @ eye.unsqueeze(-1)).squeeze(-1)
    w2c[:, 3, 3] = 1.0
    return w2c


def orbit_position(elevation_deg: Tensor, azimuth_deg: Tensor, radius: Tensor) -> Tensor:
    """Camera centres [B, 3] on the orbit (see the module docstring for the convention)."""
    elev = torch.deg2rad(elevation_deg)
    azim = torch.deg2rad(azimuth_deg)
    return torch.stack(
        [radius * torch.cos(elev) * torch.sin(azim), radius * torch.sin(elev), radius * torch.cos(elev) * torch.cos(azim)],
        dim=-1,
    )


def orbit_cameras(
    elevation_deg: Tensor | float,
    azimuth_deg: Tensor | float,
    radius: Tensor | float,
    fov_deg: Tensor | float,
    width: int,
    height: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Cameras:
    """Cameras looking at the origin from the given orbit angles; `fov_deg` is the vertical FOV."""
    height = width if height is None else height
    values = [torch.as_tensor(v, dtype=dtype, device=device).reshape(-1) for v in (elevation_deg, azimuth_deg, radius, fov_deg)]
    batch = max(v.numel() for v in values)
    elev, azim, rad, fov = (v.expand(batch).clone() for v in values)
    eye = orbit_position(elev, azim, rad)
    w2c = look_at(eye, torch.zeros(3, dtype=dtype, device=device))
    focal = 0.5 * height / torch.tan(torch.deg2rad(fov) / 2)
    return Cameras(
        world_to_cam=w2c,
        fx=focal,
        fy=focal.clone(),
        cx=torch.full_like(focal, width / 2),
        cy=torch.full_like(focal, height / 2),
        width=width,
        height=height,
        elevation_deg=elev,
        azimuth_deg=azim,
        radius=rad,
    )


@dataclass
class OrbitRanges:
    """Ranges that orbit sampling draws from (uniformly; azimuth is stratified over the batch)."""

    elevation_deg: tuple[float, float] = (-10.0, 45.0)
    azimuth_deg: tuple[float, float] = (-180.0, 180.0)
    radius: tuple[float, float] = (3.0, 3.5)
    fov_deg: tuple[float, float] = (35.0, 45.0)


def sample_orbit_cameras(
    batch: int,
    ranges: OrbitRanges,
    width: int,
    height: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Cameras:
    """Random orbit cameras; azimuths are spread evenly over the batch with a random offset,
    so a batch of 4 sees the object from four sides (a cheap guard against multi-face results)."""

    def uniform(lo: float, hi: float, n: int) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    elev = uniform(*ranges.elevation_deg, batch)
    lo, hi = ranges.azimuth_deg
    offset = torch.rand(1, generator=generator)
    strata = (torch.arange(batch) + offset) / batch
    azim = lo + (hi - lo) * strata[torch.randperm(batch, generator=generator)]
    radius = uniform(*ranges.radius, batch)
    fov = uniform(*ranges.fov_deg, batch)
    return orbit_cameras(elev, azim, radius, fov, width, height, device=device)


def turntable_cameras(
    frames: int, elevation_deg: float, radius: float, fov_deg: float, width: int, height: int | None = None,
    device: torch.device | str = "cpu",
) -> Cameras:
    """Evenly spaced azimuths starting at the front view, for turntables and contact sheets."""
    return orbit_cameras(elevation_deg, turntable_azimuths(frames), radius, fov_deg, width, height, device=device)


def turntable_azimuths(frames: int) -> Tensor:
    """[frames] azimuths in degrees, evenly spaced from the front view (0)."""
    return torch.arange(frames, dtype=torch.float32) * (360.0 / frames)


def view_direction(elevation_deg: Tensor, azimuth_deg: Tensor, overhead_threshold: float = 60.0) -> list[str]:
    """Name each view 'front', 'side', 'back' or 'overhead' (for view-dependent prompts)."""
    names = []
    for elev, azim in zip(elevation_deg.tolist(), azimuth_deg.tolist()):
        azim = (azim + 180.0) % 360.0 - 180.0
        if elev >= overhead_threshold:
            names.append("overhead")
        elif abs(azim) < 45.0:
            names.append("front")
        elif abs(azim) > 135.0:
            names.append("back")
        else:
            names.append("side")
    return names
