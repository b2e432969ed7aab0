"""How closely an exported mesh looks like the Gaussians it came from.

Both are rendered from the same cameras over the same background (the mesh unlit, with
`tv3dg.render.triangles`); the score is the PSNR over the pixels either of them covers (the
object mask), so silhouette errors and colour errors both count and the empty background,
which always matches, does not inflate it.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh
from torch import Tensor

from tv3dg.export.mesh import texture_image
from tv3dg.gaussians.model import Gaussians
from tv3dg.render.cameras import Cameras
from tv3dg.render.rasterizer import rasterize
from tv3dg.render.triangles import render_mesh


def render_trimesh(mesh: trimesh.Trimesh, cameras: Cameras, background: Tensor) -> tuple[Tensor, Tensor]:
    """Renders [B, H, W, 3] and masks of a textured or vertex-coloured trimesh."""
    vertices = torch.from_numpy(np.asarray(mesh.vertices)).float()
    faces = torch.from_numpy(np.asarray(mesh.faces)).long()
    image = texture_image(mesh)
    if image is not None:
        uv = torch.from_numpy(np.asarray(mesh.visual.uv)).float()
        return render_mesh(vertices, faces, cameras, background, uv=uv, texture=torch.from_numpy(image.copy()).float() / 255)
    colors = torch.from_numpy(np.asarray(mesh.visual.vertex_colors)[:, :3]).float() / 255
    return render_mesh(vertices, faces, cameras, background, vertex_colors=colors)


def mesh_fidelity(
    mesh: trimesh.Trimesh, gaussians: Gaussians, cameras: Cameras, background: Tensor
) -> dict[str, float]:
    """PSNR (dB) and mean absolute colour error (0-1 scale) of the mesh's renders against the
    Gaussians' renders, over the object mask; plus the mask IoU."""
    with torch.no_grad():
        target = rasterize(gaussians, cameras, background, backend="torch")
    mesh_rgb, mesh_mask = render_trimesh(mesh, cameras, background)
    gauss_mask = target.alpha[..., 0] > 0.5
    union = mesh_mask | gauss_mask
    diff = (mesh_rgb - target.rgb)[union]
    mse = float((diff**2).mean())
    return {
        "psnr": float(10 * np.log10(1.0 / max(mse, 1e-10))),
        "mae": float(diff.abs().mean()),
        "mask_iou": float((mesh_mask & gauss_mask).sum() / union.sum().clamp_min(1)),
    }
