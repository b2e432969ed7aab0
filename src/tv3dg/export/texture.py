"""UV unwrap (xatlas) and texture baking for the exported mesh.

The colour of each texel is the colour the Gaussians show at the surface point behind it:
rasterizing the triangles in UV space gives that point and its normal, and `color_at` (renders of
the Gaussians projected onto it, or the density-weighted colour grid) gives its colour. Texels outside every chart are then filled
from their neighbours (dilation into the gutter), so that bilinear filtering and mipmaps at a
chart's border never pull in the empty background (no dark seams).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import xatlas
from torch import Tensor

from tv3dg.render.triangles import rasterize_triangles


@dataclass
class UVMesh:
    """A mesh split along its UV seams: `source_vertex` maps each vertex to the unwrapped mesh's."""

    vertices: np.ndarray  # [V, 3]
    normals: np.ndarray  # [V, 3] unit, equal on both sides of a seam
    faces: np.ndarray  # [F, 3]
    uv: np.ndarray  # [V, 2] in [0, 1], v up (OBJ convention)
    source_vertex: np.ndarray  # [V]


def unwrap(vertices: np.ndarray, normals: np.ndarray, faces: np.ndarray, resolution: int, padding: int = 3) -> UVMesh:
    """xatlas charts packed into one atlas of about `resolution`^2 texels with `padding` texels between
    charts (xatlas may overshoot the size by ~20%; its UVs are normalised to [0, 1] either way)."""
    atlas = xatlas.Atlas()
    atlas.add_mesh(vertices.astype(np.float32), faces.astype(np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = resolution
    pack.padding = padding
    pack.bilinear = True
    charts = xatlas.ChartOptions()
    charts.max_iterations = 0  # no chart-growing refinement: half the time on a marching-cubes surface
    atlas.generate(chart_options=charts, pack_options=pack)
    source_vertex, new_faces, uv = atlas[0]
    return UVMesh(
        vertices[source_vertex], normals[source_vertex], new_faces.astype(np.int64), uv.astype(np.float64), source_vertex
    )


def texel_surface(mesh: UVMesh, resolution: int) -> tuple[Tensor, Tensor, Tensor]:
    """World position [R, R, 3] and unit normal [R, R, 3] of the surface behind each texel, and the
    mask [R, R] of covered texels."""
    uv = torch.from_numpy(mesh.uv).float()
    faces = torch.from_numpy(mesh.faces)
    pixel = torch.stack([uv[:, 0] * resolution, (1 - uv[:, 1]) * resolution], dim=-1)  # row 0 at v = 1
    frags = rasterize_triangles(pixel[faces], resolution, resolution)
    corner_ids = faces[frags.face.clamp_min(0)]  # [R, R, 3]
    weights = frags.bary[..., None]
    points = (torch.from_numpy(mesh.vertices).float()[corner_ids] * weights).sum(dim=-2)
    normals = (torch.from_numpy(mesh.normals).float()[corner_ids] * weights).sum(dim=-2)
    return points, torch.nn.functional.normalize(normals, dim=-1), frags.mask


def bake(mesh: UVMesh, resolution: int, color_at: Callable[[Tensor, Tensor], Tensor]) -> np.ndarray:
    """Texture [R, R, 3] uint8: `color_at(points [N, 3], normals [N, 3]) -> [N, 3] in [0, 1]` at every
    covered texel."""
    points, normals, mask = texel_surface(mesh, resolution)
    image = torch.zeros(resolution, resolution, 3)
    image[mask] = color_at(points[mask], normals[mask]).float()
    image = dilate(image, mask)
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def dilate(image: Tensor, mask: Tensor, rounds: int = 8) -> Tensor:
    """Fill empty texels with the mean of their filled 3x3 neighbours, `rounds` times (the charts'
    gutters are 3 texels, so bilinear filtering and the first mip levels only read filled texels);
    the rest, far from every chart, takes the mean colour."""
    filled = mask.float()[None]
    stack = torch.cat([image.permute(2, 0, 1) * filled, filled])[None]  # [1, 4, R, R]: colour sums and counts
    for _ in range(rounds):
        if bool(stack[0, 3].all()):
            break
        pooled = torch.nn.functional.avg_pool2d(stack, 3, stride=1, padding=1)
        grow = (stack[0, 3] == 0) & (pooled[0, 3] > 0)
        stack[0, :3, grow] = pooled[0, :3, grow] / pooled[0, 3, grow]
        stack[0, 3, grow] = 1.0
    out = stack[0, :3].permute(1, 2, 0)
    if bool(mask.any()):
        out[stack[0, 3] == 0] = image[mask].mean(dim=0)
    return out
