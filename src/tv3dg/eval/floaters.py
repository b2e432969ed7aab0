"""Floaters: how much of an asset's opacity lies away from the object, in views no metric used.

Two shares of the rendered alpha mass, per view, averaged over the held-out views:

- `floaters`: mass farther than `margin_px` pixels from the asset's own main body, the largest
  8-connected region of pixels with alpha > 0.5. Needs no ground truth; it sees detached
  blobs and haze, not a wrong shape.
- `outside_shape`: mass farther than `margin_px` pixels from a reference silhouette of the
  intended object at the same cameras (in the mini world: the world's render of the shape the
  prompt names). It also counts a body of the wrong shape or size, so read it beside the shape
  accuracy.
- `holes`: share of the reference silhouette, shrunk by `margin_px`, where the asset is not
  opaque (alpha <= 0.5): see-through spots and missing parts, which the two shares above cannot
  see. A body of the wrong shape also leaves some.

An asset with no pixel above alpha 0.5 has no body: all its mass counts as floaters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tv3dg.gaussians.model import Gaussians
from tv3dg.render.cameras import Cameras, orbit_cameras
from tv3dg.render.rasterizer import rasterize

BODY_ALPHA = 0.5


def held_out_cameras(views: int = 8, elevation_deg: float = 35.0, radius: float = 3.2, fov_deg: float = 40.0,
                     size: int = 64) -> Cameras:
    """Views between the metric views (half-step azimuths) and above their 15 degrees elevation."""
    azimuth = (torch.arange(views, dtype=torch.float32) + 0.5) * (360.0 / views)
    return orbit_cameras(elevation_deg, azimuth, radius, fov_deg, size)


def dilate(mask: Tensor, pixels: int) -> Tensor:
    """Binary dilation of masks [V,H,W] by a (2p+1)^2 square."""
    if pixels <= 0:
        return mask
    return F.max_pool2d(mask[:, None].float(), 2 * pixels + 1, stride=1, padding=pixels)[:, 0] > 0


def largest_component(mask: Tensor) -> Tensor:
    """The largest 8-connected region of each mask [V,H,W] (label propagation by max-pooling)."""
    height, width = mask.shape[-2:]
    labels = torch.arange(1, height * width + 1, dtype=torch.float32).reshape(1, height, width) * mask
    while True:
        grown = F.max_pool2d(labels[:, None], 3, stride=1, padding=1)[:, 0] * mask
        if torch.equal(grown, labels):
            break
        labels = grown
    body = torch.zeros_like(mask)
    for view, view_labels in enumerate(labels):
        values, counts = view_labels[view_labels > 0].unique(return_counts=True)
        if len(values):
            body[view] = view_labels == values[counts.argmax()]
    return body


def mass_outside(alpha: Tensor, allowed: Tensor) -> Tensor:
    """Per view, the share of alpha mass [V,H,W] outside the `allowed` mask (0 for an empty view)."""
    total = alpha.sum(dim=(1, 2))
    outside = (alpha * ~allowed).sum(dim=(1, 2))
    return torch.where(total > 0, outside / total.clamp_min(1e-12), torch.zeros_like(total))


def erode(mask: Tensor, pixels: int) -> Tensor:
    """Binary erosion of masks [V,H,W] by a (2p+1)^2 square."""
    return ~dilate(~mask, pixels)


def uncovered(alpha: Tensor, region: Tensor) -> Tensor:
    """Per view, the share of `region` [V,H,W] where alpha is not above BODY_ALPHA (0 for an empty region)."""
    size = region.sum(dim=(1, 2))
    missing = (region & (alpha <= BODY_ALPHA)).sum(dim=(1, 2))
    return torch.where(size > 0, missing / size.clamp_min(1), torch.zeros_like(size, dtype=alpha.dtype))


def floater_report(gaussians: Gaussians, cameras: Cameras, silhouette: Tensor | None = None, margin_px: int = 3) -> dict:
    """`floaters` and (given the reference `silhouette` [V,H,W] at `cameras`) `outside_shape` and
    `holes`, each averaged over the views."""
    with torch.no_grad():
        alpha = rasterize(gaussians, cameras, torch.ones(3)).alpha[..., 0]
    body = largest_component(alpha > BODY_ALPHA)
    report = {"floaters": float(mass_outside(alpha, dilate(body, margin_px)).mean()), "margin_px": margin_px}
    if silhouette is not None:
        report["outside_shape"] = float(mass_outside(alpha, dilate(silhouette, margin_px)).mean())
        report["holes"] = float(uncovered(alpha, erode(silhouette, margin_px)).mean())
    return report
