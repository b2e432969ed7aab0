"""Brute-force reference renderer: every pixel against every Gaussian, plain autograd.

No tiles, no chunks, no early termination, no hand-written gradient: it exists so that tests can
hold the fast paths against something obviously correct. It shares only the EWA projection and
the truncation rules (`RasterSettings`). Memory is O(B * H * W * N): tiny scenes only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tv3dg.gaussians.model import Gaussians
from tv3dg.render.cameras import Cameras
from tv3dg.render.projection import project_gaussians
from tv3dg.render.rasterizer import RasterSettings, RenderOutput


def rasterize_reference(
    gaussians: Gaussians, cameras: Cameras, background: Tensor, settings: RasterSettings | None = None
) -> RenderOutput:
    settings = settings or RasterSettings()
    opacities = gaussians.opacities[:, 0]
    proj = project_gaussians(
        gaussians.means, gaussians.covariances(), opacities, cameras,
        near_plane=settings.near_plane, eps2d=settings.eps2d,
        sigma_cutoff=settings.sigma_cutoff, alpha_min=settings.alpha_min,
    )
    colors = gaussians.colors(gaussians.means[None] - cameras.centers.to(gaussians.means.dtype)[:, None])
    background = torch.as_tensor(background, dtype=gaussians.means.dtype).expand(len(cameras), 3)
    ys, xs = torch.meshgrid(
        torch.arange(cameras.height, dtype=gaussians.means.dtype) + 0.5,
        torch.arange(cameras.width, dtype=gaussians.means.dtype) + 0.5,
        indexing="ij",
    )
    images, alphas, depths = [], [], []
    for cam in range(len(cameras)):
        order = torch.argsort(proj.depths[cam].detach())
        order = order[proj.visible[cam][order]]
        mean = proj.means2d[cam, order]  # [K, 2]
        a, b, c = proj.conics[cam, order].unbind(-1)
        dx = xs.reshape(-1, 1) - mean[:, 0]  # [H*W, K]
        dy = ys.reshape(-1, 1) - mean[:, 1]
        q = a * dx * dx + 2 * b * dx * dy + c * dy * dy
        alpha = opacities[order] * torch.exp(-0.5 * q)
        keep = (q <= settings.sigma_cutoff**2) & (alpha >= settings.alpha_min)
        alpha = torch.where(keep, torch.clamp(alpha, max=settings.alpha_max), torch.zeros_like(alpha))
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha], dim=1), dim=1)
        weights = alpha * trans[:, :-1]
        final = trans[:, -1:]
        images.append(weights @ colors[cam, order] + final * background[cam])
        alphas.append(1 - final)
        depths.append(weights @ proj.depths[cam, order][:, None])
    shape = (len(cameras), cameras.height, cameras.width, -1)
    return RenderOutput(
        rgb=torch.stack(images).reshape(shape),
        alpha=torch.stack(alphas).reshape(shape),
        depth=torch.stack(depths).reshape(shape),
        means2d=proj.means2d,
        radii=proj.radii,
        visible=proj.visible,
    )
