"""EWA splatting: project 3D Gaussians to 2D image-plane Gaussians for a batch of cameras.

A Gaussian with mean `mu` and covariance `Sigma` (world) becomes, in camera `b`, a 2D Gaussian
with mean `pi(R mu + t)` and covariance `J R Sigma R^T J^T + eps2d * I`, where `J` is the
Jacobian of the perspective projection at the mean (the local affine approximation of EWA
splatting) and `eps2d` a low-pass filter that keeps every splat at least about a pixel wide.

The footprint is truncated where the Gaussian cannot contribute: at `sigma_cutoff` standard
deviations, and where `opacity * exp(-q/2)` falls under `alpha_min`. Both rasterizer paths and
the brute-force reference apply the same truncation, so they agree pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tv3dg.render.cameras import Cameras


@dataclass
class Projection:
    """Per-camera 2D Gaussians, all [B, N, ...]. Entries with `visible == False` are to be ignored."""

    means2d: Tensor  # [B, N, 2] pixel coordinates (pixel (i, j) has its centre at (j + .5, i + .5))
    conics: Tensor  # [B, N, 3] (a, b, c): inverse 2D covariance [[a, b], [b, c]]
    depths: Tensor  # [B, N] camera-space z
    extents: Tensor  # [B, N, 2] half-size in pixels of the box that holds the truncated footprint
    radii: Tensor  # [B, N] 3-sigma radius of the major axis in pixels, 0 where not visible
    visible: Tensor  # [B, N] bool: in front of the camera, on screen and not negligible


def project_gaussians(
    means: Tensor,
    covariances: Tensor,
    opacities: Tensor,
    cameras: Cameras,
    near_plane: float = 0.01,
    eps2d: float = 0.3,
    sigma_cutoff: float = 3.0,
    alpha_min: float = 1.0 / 255.0,
) -> Projection:
    """Project `means` [N,3] with world `covariances` [N,3,3] and `opacities` [N] into `cameras`."""
    rot = cameras.world_to_cam[:, :3, :3].to(means.dtype)  # [B, 3, 3]
    trans = cameras.world_to_cam[:, :3, 3].to(means.dtype)  # [B, 3]
    points = torch.einsum("bij,nj->bni", rot, means) + trans[:, None, :]  # [B, N, 3]
    x, y, z = points.unbind(-1)
    in_front = z > near_plane
    z_safe = torch.where(in_front, z, torch.full_like(z, 1.0))

    fx, fy = cameras.fx.to(means.dtype)[:, None], cameras.fy.to(means.dtype)[:, None]
    cx, cy = cameras.cx.to(means.dtype)[:, None], cameras.cy.to(means.dtype)[:, None]
    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], dim=-1)

    # Jacobian of the projection; x/z and y/z are clamped a little beyond the image so that
    # Gaussians far outside the frustum do not get huge, unstable footprints.
    limit_x = 1.3 * torch.maximum(cx, cameras.width - cx) / fx
    limit_y = 1.3 * torch.maximum(cy, cameras.height - cy) / fy
    tx = torch.maximum(torch.minimum(x / z_safe, limit_x), -limit_x)
    ty = torch.maximum(torch.minimum(y / z_safe, limit_y), -limit_y)
    zeros = torch.zeros_like(z_safe)
    jac = torch.stack(
        [fx / z_safe, zeros, -fx * tx / z_safe, zeros, fy / z_safe, -fy * ty / z_safe], dim=-1
    ).reshape(z.shape + (2, 3))
    jr = jac @ rot[:, None]  # [B, N, 2, 3]
    cov2d = jr @ covariances[None] @ jr.transpose(-1, -2)
    a = cov2d[..., 0, 0] + eps2d
    b = cov2d[..., 0, 1]
    c = cov2d[..., 1, 1] + eps2d
    det = a * c - b * b
    det_safe = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)

    with torch.no_grad():
        # Largest q = d^T Sigma^-1 d at which the Gaussian still reaches alpha_min (and <= cutoff^2).
        opacity = opacities.detach().expand_as(z)
        q_max = torch.clamp(2.0 * torch.log(opacity.clamp_min(1e-30) / alpha_min), max=sigma_cutoff**2)
        extents = torch.sqrt(q_max.clamp_min(0.0)[..., None] * torch.stack([a, c], dim=-1).detach())
        mid = 0.5 * (a + c).detach()
        lambda_max = mid + torch.sqrt(torch.clamp(mid * mid - det.detach(), min=0.1))
        centre = means2d.detach()
        on_screen = (
            (centre[..., 0] + extents[..., 0] > 0)
            & (centre[..., 0] - extents[..., 0] < cameras.width)
            & (centre[..., 1] + extents[..., 1] > 0)
            & (centre[..., 1] - extents[..., 1] < cameras.height)
        )
        visible = in_front & (det.detach() > 0) & (q_max > 0) & on_screen
        radii = torch.where(visible, torch.ceil(3.0 * torch.sqrt(lambda_max)), torch.zeros_like(lambda_max))
        extents = extents * visible[..., None]
    return Projection(means2d=means2d, conics=conics, depths=z, extents=extents, radii=radii, visible=visible)

