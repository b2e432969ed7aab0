"""Render-and-project texture colours: what the Gaussians show at each surface point.

The density-weighted colour grid mixes every Gaussian near a surface point, including the ones
behind it, so stripes come out soft and a few hidden Gaussians leak through as specks. Renders
of the Gaussians show only what a viewer sees. Each surface point is projected into renders from
views all around the object; a view counts where the point is the nearest mesh surface along
that pixel (the mesh's own depth buffer), weighted by how squarely the view faces the surface
(`cos^power` of the angle, so the most frontal view dominates and seams between views blend)
and by the render's opacity there. Points that no view sees keep the caller's fallback colour.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tv3dg.gaussians.model import Gaussians
from tv3dg.render.cameras import Cameras, orbit_cameras
from tv3dg.render.rasterizer import rasterize
from tv3dg.render.triangles import project, rasterize_triangles


def bake_cameras(radius: float, fov_deg: float, resolution: int) -> Cameras:
    """14 views: 8 azimuths on the horizon, 4 diagonals from 45 degrees above, and straight above
    and below, so every surface orientation has a view within about 35 degrees of its normal."""
    elevation = torch.tensor([0.0] * 8 + [45.0] * 4 + [89.0, -89.0])
    azimuth = torch.cat([torch.arange(8) * 45.0, torch.arange(4) * 90.0 + 45.0, torch.zeros(2)])
    return orbit_cameras(elevation, azimuth, radius, fov_deg, resolution)


def projected_colors(
    gaussians: Gaussians,
    vertices: Tensor,
    faces: Tensor,
    points: Tensor,
    normals: Tensor,
    cameras: Cameras,
    depth_tolerance: float,
    power: float = 4.0,
) -> tuple[Tensor, Tensor]:
    """Colours [N, 3] of surface `points` [N, 3] with unit `normals` [N, 3] on the mesh (`vertices`,
    `faces`), and their total view weight [N] (0: no view saw the point)."""
    with torch.no_grad():
        renders = rasterize(gaussians, cameras, torch.zeros(3))  # black background: rgb is premultiplied
    pixels, depth = project(vertices, cameras)
    point_pixels, point_depth = project(points, cameras)
    total = torch.zeros(points.shape[0], 3)
    weight = torch.zeros(points.shape[0])
    size = torch.tensor([cameras.width, cameras.height], dtype=torch.float32)
    for i in range(len(cameras)):
        to_camera = torch.nn.functional.normalize(cameras.centers[i] - points, dim=-1)
        facing = (normals * to_camera).sum(dim=-1)
        ids = torch.nonzero(facing > 0.05)[:, 0]  # only the half of the surface turned towards the view
        pix, z = point_pixels[i, ids], point_depth[i, ids]
        frags = rasterize_triangles(pixels[i][faces], cameras.height, cameras.width, depth=depth[i][faces])
        col, row = pix.floor().long().unbind(-1)
        inside = (pix >= 0).all(dim=-1) & (pix < size).all(dim=-1)
        visible = inside & (z <= frags.depth[row.clamp(0, cameras.height - 1), col.clamp(0, cameras.width - 1)] + depth_tolerance)
        grid = (pix / size * 2 - 1).reshape(1, -1, 1, 2)
        image = torch.cat([renders.rgb[i], renders.alpha[i]], dim=-1).permute(2, 0, 1)[None]
        sampled = torch.nn.functional.grid_sample(image, grid, mode="bilinear", align_corners=False)[0, :, :, 0].T
        alpha = sampled[:, 3]
        w = visible * facing[ids] ** power * alpha
        total.index_add_(0, ids, w[:, None] * sampled[:, :3] / alpha.clamp_min(1e-3)[:, None])  # un-premultiply
        weight.index_add_(0, ids, w)
    return total / weight.clamp_min(1e-8)[:, None], weight
