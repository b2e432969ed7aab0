"""Mesh export: Gaussians -> density grid -> marching cubes -> vertex-coloured mesh (.glb/.obj).

Each Gaussian adds `opacity * exp(-0.5 d^T Sigma^-1 d)` to the voxels within its 3-sigma
window, and its colour weighted the same way; the surface is the `threshold` level set of the
density, coloured by the density-weighted colour at each vertex.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mcubes
import numpy as np
import torch
import trimesh
from torch import Tensor

from tv3dg.atomic import atomic_path
from tv3dg.errors import UserError


@dataclass
class MeshConfig:
    resolution: int = 96  # voxels along each axis of the bounding box
    threshold: float = 0.5  # density level of the surface
    min_opacity: float = 0.05  # Gaussians fainter than this are ignored
    max_window: int = 6  # a Gaussian touches at most (2*max_window+1)^3 voxels
    padding: float = 0.1  # fraction of the bounding box added on each side
    chunk: int = 4096  # Gaussians per scatter pass (bounds peak memory)


@dataclass
class DensityGrid:
    density: Tensor  # [R, R, R] indexed (x, y, z)
    color: Tensor  # [R, R, R, 3] density-weighted mean colour
    origin: Tensor  # [3] world position of voxel (0, 0, 0)
    voxel: float  # voxel edge length


def _bounds(means: Tensor, padding: float) -> tuple[Tensor, Tensor]:
    lo = means.min(dim=0).values
    hi = means.max(dim=0).values
    extent = (hi - lo).max().clamp_min(1e-3)
    centre = (lo + hi) / 2
    half = extent * (0.5 + padding)
    return centre - half, centre + half


def density_grid(
    means: Tensor, covariances: Tensor, opacities: Tensor, colors: Tensor, config: MeshConfig
) -> DensityGrid:
    """Splat Gaussians (means [N,3], covariances [N,3,3], opacities [N], colors [N,3]) into a grid."""
    keep = opacities > config.min_opacity
    if not bool(keep.any()):
        raise UserError("every Gaussian is nearly transparent, so there is no surface to mesh; train longer or lower mesh.min_opacity")
    means, covariances, opacities, colors = means[keep], covariances[keep], opacities[keep], colors[keep]
    res = config.resolution
    lo, hi = _bounds(means, config.padding)
    voxel = float((hi - lo).max() / (res - 1))
    precision = torch.linalg.inv(covariances + 1e-8 * torch.eye(3))
    sigma = torch.sqrt(torch.diagonal(covariances, dim1=-2, dim2=-1).max(dim=-1).values)
    window = int(min(config.max_window, max(1, np.ceil(float((3 * sigma).quantile(0.95)) / voxel))))
    span = torch.arange(-window, window + 1)
    offsets = torch.stack(torch.meshgrid(span, span, span, indexing="ij"), dim=-1).reshape(-1, 3)
    density = torch.zeros(res**3)
    weighted_color = torch.zeros(res**3, 3)
    for start in range(0, means.shape[0], config.chunk):
        m = means[start : start + config.chunk]
        centre_idx = torch.round((m - lo) / voxel).long()  # [n, 3]
        idx = centre_idx[:, None, :] + offsets[None]  # [n, w, 3]
        inside = ((idx >= 0) & (idx < res)).all(dim=-1)
        pos = lo + idx.float() * voxel
        d = pos - m[:, None, :]
        mahalanobis = torch.einsum("nwi,nij,nwj->nw", d, precision[start : start + config.chunk], d)
        contrib = opacities[start : start + config.chunk, None] * torch.exp(-0.5 * mahalanobis) * inside
        flat = (idx[..., 0].clamp(0, res - 1) * res + idx[..., 1].clamp(0, res - 1)) * res + idx[..., 2].clamp(0, res - 1)
        density.index_add_(0, flat.reshape(-1), contrib.reshape(-1))
        c = colors[start : start + config.chunk]
        weighted_color.index_add_(0, flat.reshape(-1), (contrib[..., None] * c[:, None, :]).reshape(-1, 3))
    color = weighted_color / density.clamp_min(1e-8)[:, None]
    return DensityGrid(density.reshape(res, res, res), color.reshape(res, res, res, 3), lo, voxel)


def _sample_color(grid: DensityGrid, points: np.ndarray) -> np.ndarray:
    """Trilinear lookup of the colour grid at world points."""
    res = grid.density.shape[0]
    coords = (torch.from_numpy(points).float() - grid.origin) / grid.voxel
    normalized = coords / (res - 1) * 2 - 1  # grid_sample wants (z, y, x)-ordered last dim for (D, H, W)
    volume = grid.color.permute(3, 0, 1, 2)[None]  # [1, 3, X, Y, Z] read as (D=X, H=Y, W=Z)
    sample_at = normalized.flip(-1)[None, :, None, None, :]
    sampled = torch.nn.functional.grid_sample(volume, sample_at, align_corners=True, mode="bilinear")
    return sampled[0, :, :, 0, 0].T.clamp(0, 1).numpy()


def extract_mesh(grid: DensityGrid, threshold: float) -> trimesh.Trimesh:
    """Marching cubes on the density grid; vertices in world units, outward-facing triangles."""
    volume = grid.density.numpy().astype(np.float64)
    if volume.max() <= threshold:
        raise UserError(
            f"the density never reaches mesh.threshold={threshold} (max {volume.max():.3f}); lower mesh.threshold"
        )
    vertices, triangles = mcubes.marching_cubes(volume, threshold)
    vertices = vertices * grid.voxel + grid.origin.numpy()
    colors = (_sample_color(grid, vertices) * 255).round().astype(np.uint8)
    mesh = trimesh.Trimesh(vertices=vertices, faces=triangles, vertex_colors=colors, process=True)
    if mesh.is_volume and mesh.volume < 0:
        mesh.invert()
    return mesh


def save_mesh(mesh: trimesh.Trimesh, path: str | Path) -> None:
    """Write .glb or .obj (vertex colours in both) atomically."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".glb", ".obj", ".ply"):
        raise UserError(f"mesh file '{path}' must end in .glb, .obj or .ply")
    with atomic_path(path) as tmp:
        mesh.export(tmp, file_type=suffix[1:])
