"""Mesh export: Gaussians -> density grid -> marching cubes -> decimated, textured mesh (.glb/.obj).

Each Gaussian adds `opacity * exp(-0.5 d^T Sigma^-1 d)` to the voxels within its 3-sigma
window, and its colour weighted the same way; the surface is the `threshold` level set of the
density. Marching cubes gives far more triangles than the shape needs (about 130k for the
default cube), so the mesh is decimated by quadric edge collapse with its topology preserved (a
closed surface stays closed), then either UV-unwrapped with a baked texture (what DCC tools and
game engines expect) or coloured per vertex; both colour from the density-weighted colour grid.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import mcubes
import numpy as np
import pymeshlab
import torch
import trimesh
from PIL import Image
from torch import Tensor

from tv3dg.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from tv3dg.errors import UserError
from tv3dg.export.projection import bake_cameras, projected_colors
from tv3dg.export.texture import bake, unwrap
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.sh import sh_dc_to_rgb


@dataclass
class MeshConfig:
    """The mesh export: density grid, marching cubes, decimation, UV unwrap and texture bake."""

    resolution: int = 96
    """Voxels along each axis of the density grid's bounding box."""
    threshold: float = 0.5
    """Density level of the surface."""
    min_opacity: float = 0.05
    """Gaussians fainter than this are left out of the grid."""
    max_window: int = 6
    """A Gaussian touches at most (2*max_window+1)^3 voxels."""
    padding: float = 0.1
    """Fraction of the bounding box added on each side."""
    chunk: int = 4096
    """Gaussians per scatter pass (bounds peak memory)."""
    target_faces: int = 20000
    """Decimate to at most this many faces; 0: keep every marching-cubes face."""
    texture: bool = True
    """UV-unwrap and bake a texture image; false: per-vertex colours."""
    texture_resolution: int = 1024
    """Side of the texture image in pixels."""
    bake: Literal["render", "grid"] = "render"
    """Texel colours: `render` projects renders of the Gaussians onto the surface (what a viewer sees); `grid` reads the density-weighted colour grid."""
    bake_resolution: int = 256
    """Side of each bake render in pixels."""


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


def gaussian_grid(gaussians: Gaussians, config: MeshConfig) -> DensityGrid:
    """`density_grid` of a Gaussians model, coloured by its view-independent (DC) colour."""
    with torch.no_grad():
        colors = sh_dc_to_rgb(gaussians.sh_dc[:, 0]).clamp(0, 1)
        return density_grid(gaussians.means, gaussians.covariances(), gaussians.opacities[:, 0], colors, config)


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


def decimate(mesh: trimesh.Trimesh, target_faces: int) -> trimesh.Trimesh:
    """Quadric edge collapse down to at most `target_faces` (geometry only; colours are re-sampled after).

    MeshLab's collapse with topology preservation comes first because it never pinches the surface:
    a watertight input stays watertight (simpler collapsers leave non-manifold edges). A surface
    riddled with tiny handles (a thin shell meshed on a coarse grid) cannot get that light with its
    topology kept; it is then collapsed further without that constraint, so the face budget holds.
    """
    if target_faces <= 0 or len(mesh.faces) <= target_faces:
        return trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int32)))
    for keep_topology in (True, False):
        meshes.meshing_decimation_quadric_edge_collapse(
            targetfacenum=target_faces, preservetopology=keep_topology, preservenormal=True, optimalplacement=True,
            planarquadric=True, autoclean=True,
        )
        if meshes.current_mesh().face_number() <= target_faces:
            break
    out = meshes.current_mesh()
    result = trimesh.Trimesh(out.vertex_matrix(), out.face_matrix(), process=True)
    if result.is_volume and result.volume < 0:
        result.invert()
    return result


def export_mesh(grid: DensityGrid, config: MeshConfig, gaussians: Gaussians) -> trimesh.Trimesh:
    """The mesh a run exports from `gaussians` and their density `grid`: marching cubes,
    decimated, then textured or vertex-coloured."""
    mesh = decimate(extract_mesh(grid, config.threshold), config.target_faces)
    vertices = np.asarray(mesh.vertices)
    if not config.texture:
        colors = (_sample_color(grid, vertices) * 255).round().astype(np.uint8)
        return trimesh.Trimesh(vertices, mesh.faces, vertex_colors=colors, process=False)
    if config.texture_resolution < 16:
        raise UserError(f"export.mesh.texture_resolution={config.texture_resolution} is too small; use at least 16 (e.g. 1024)")
    uv_mesh = unwrap(vertices, np.asarray(mesh.vertex_normals), np.asarray(mesh.faces), config.texture_resolution)
    image = bake(uv_mesh, config.texture_resolution, _texel_colors(grid, config, gaussians, mesh))
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.fromarray(image), metallicFactor=0.0, roughnessFactor=1.0, doubleSided=False
    )
    visual = trimesh.visual.TextureVisuals(uv=uv_mesh.uv, material=material)
    normals = np.asarray(mesh.vertex_normals)[uv_mesh.source_vertex]  # smooth shading across UV seams
    return trimesh.Trimesh(uv_mesh.vertices, uv_mesh.faces, vertex_normals=normals, visual=visual, process=False)


def _texel_colors(
    grid: DensityGrid, config: MeshConfig, gaussians: Gaussians, mesh: trimesh.Trimesh
) -> Callable[[Tensor, Tensor], Tensor]:
    """`bake`'s colour source: projected renders where a view sees the texel, else the colour grid."""

    def grid_colors(points: Tensor) -> Tensor:
        return torch.from_numpy(_sample_color(grid, points.numpy()))

    def render_colors(points: Tensor, normals: Tensor) -> Tensor:
        vertices = torch.from_numpy(np.asarray(mesh.vertices)).float()
        radius = 3.2 * float(vertices.norm(dim=-1).max())  # the whole object inside a 40 degree view
        colors, seen = projected_colors(
            gaussians, vertices, torch.from_numpy(np.asarray(mesh.faces)).long(), points, normals,
            bake_cameras(radius, 40.0, config.bake_resolution), depth_tolerance=2 * grid.voxel,
        )
        return torch.where((seen > 0)[:, None], colors, grid_colors(points))

    if config.bake == "render":
        return render_colors
    return lambda points, normals: grid_colors(points)


def texture_image(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """The baked texture [H, W, 3] uint8 of a textured mesh, None for a vertex-coloured one."""
    if mesh.visual.kind != "texture":
        return None
    return np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))


def save_mesh(mesh: trimesh.Trimesh, path: str | Path) -> list[Path]:
    """Write .glb, .obj or .ply atomically; a textured .obj also writes its .mtl and .png beside it.

    Returns every file written (the texture and material first, so a reader never sees an .obj
    that names a missing file).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".glb", ".obj", ".ply"):
        raise UserError(f"mesh file '{path}' must end in .glb, .obj or .ply")
    image = texture_image(mesh)
    if suffix == ".obj" and image is not None:
        return _save_textured_obj(mesh, image, path)
    with atomic_path(path) as tmp:
        mesh.export(tmp, file_type=suffix[1:])
    return [path]


def _save_textured_obj(mesh: trimesh.Trimesh, image: np.ndarray, path: Path) -> list[Path]:
    """OBJ + MTL + PNG; the MTL's diffuse colour is white so viewers that multiply it by the texture
    (three.js) show the texture as baked."""
    png, mtl = path.with_suffix(".png"), path.with_suffix(".mtl")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    write_bytes_atomic(png, buffer.getvalue())
    write_text_atomic(mtl, f"newmtl baked\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd {png.name}\n")
    text = io.StringIO()
    text.write(f"mtllib {mtl.name}\n")
    np.savetxt(text, np.asarray(mesh.vertices), fmt="v %.6f %.6f %.6f")
    np.savetxt(text, np.asarray(mesh.visual.uv), fmt="vt %.6f %.6f")
    text.write("usemtl baked\n")
    corners = np.asarray(mesh.faces) + 1  # OBJ counts from 1; vertex i and its UV share the index
    np.savetxt(text, np.repeat(corners, 2, axis=1), fmt="f %d/%d %d/%d %d/%d")
    write_text_atomic(path, text.getvalue())
    return [png, mtl, path]
