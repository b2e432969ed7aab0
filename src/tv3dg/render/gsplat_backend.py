"""The gsplat backend: the same `RenderOutput` from gsplat's CUDA `rasterization` (optional extra).

gsplat follows the same conventions (OpenCV camera frame, world-to-camera `viewmats`, SH colour
plus 0.5 clamped at zero, `eps2d` low-pass, "RGB+D" = accumulated depth sum_i w_i z_i), so its
images match the torch backend up to its own truncation details (e.g. its alpha cap is 0.999).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tv3dg.gaussians.model import Gaussians
from tv3dg.render.cameras import Cameras
from tv3dg.render.rasterizer import RasterSettings, RenderOutput


def rasterize_gsplat(gaussians: Gaussians, cameras: Cameras, background: Tensor, settings: RasterSettings) -> RenderOutput:
    from gsplat import rasterization

    device, dtype = gaussians.means.device, gaussians.means.dtype
    intrinsics = torch.zeros(len(cameras), 3, 3, device=device, dtype=dtype)
    intrinsics[:, 0, 0], intrinsics[:, 1, 1] = cameras.fx, cameras.fy
    intrinsics[:, 0, 2], intrinsics[:, 1, 2] = cameras.cx, cameras.cy
    intrinsics[:, 2, 2] = 1.0
    degree = gaussians.active_sh_degree
    colors, alphas, meta = rasterization(
        means=gaussians.means,
        quats=gaussians.rotations,
        scales=gaussians.scales,
        opacities=gaussians.opacities[:, 0],
        colors=gaussians.sh_coeffs[:, : (degree + 1) ** 2],
        viewmats=cameras.world_to_cam.to(device=device, dtype=dtype),
        Ks=intrinsics,
        width=cameras.width,
        height=cameras.height,
        near_plane=settings.near_plane,
        eps2d=settings.eps2d,
        sh_degree=degree,
        packed=False,
        backgrounds=background,
        render_mode="RGB+D",
        rasterize_mode="classic",
    )
    means2d = meta["means2d"]
    if means2d.requires_grad:
        means2d.retain_grad()
    radii = meta["radii"]
    if radii.dim() == 3:  # newer gsplat reports a radius per image axis
        radii = radii.amax(dim=-1)
    return RenderOutput(
        rgb=colors[..., :3],
        alpha=alphas,
        depth=colors[..., 3:4],
        means2d=means2d,
        radii=radii.to(dtype),
        visible=radii > 0,
    )
