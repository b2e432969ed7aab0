"""`rasterize`: differentiable 3D Gaussian splatting of `Gaussians` into a batch of cameras.

Two backends share this entry point: "torch" (pure PyTorch, CPU or CUDA: EWA projection, tile
binning, chunked front-to-back compositing with early termination) and "gsplat" (CUDA kernels,
optional extra). `backend="auto"` takes gsplat when CUDA is available and gsplat imports.

Outputs per camera: `rgb` = sum_i w_i c_i + T * background, `alpha` = 1 - T, and `depth` =
sum_i w_i z_i, the *unnormalised* expected camera-space depth (divide by alpha for the depth of
the surface; background pixels have depth 0). Blending weights are w_i = alpha_i prod_{j<i}(1 - alpha_j).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from tv3dg.gaussians.densify import ScreenStats
from tv3dg.gaussians.model import Gaussians
from tv3dg.render.binning import bin_gaussians
from tv3dg.render.cameras import Cameras
from tv3dg.render.composite import CompositeSettings, composite
from tv3dg.render.projection import project_gaussians

Backend = Literal["auto", "torch", "gsplat"]


@dataclass(frozen=True)
class RasterSettings:
    """Rasterizer knobs; the defaults follow common 3DGS practice.

    `sigma_cutoff` and `alpha_min` truncate each splat, `alpha_max` caps one splat's alpha,
    `transmittance_min` is the early-termination threshold (0 disables it): a tile stops once
    all its pixels are below it, which changes no pixel by more than that times its colour.
    `tile_size` and `chunk` only trade speed for memory in the torch backend. Tiles of 4x4 pixels
    evaluate fewer (pixel, Gaussian) pairs than 8x8 ones at every render size measured here
    (32 px: 0.56x the time, 128 px: 0.9x); `chunk` 0 sizes each compositing step to about
    `CHUNK_PAIRS` pairs (see `tv3dg.render.composite`), so a small image takes few, wide steps.
    """

    near_plane: float = 0.01
    eps2d: float = 0.3
    sigma_cutoff: float = 3.0
    alpha_min: float = 1.0 / 255.0
    alpha_max: float = 0.99
    transmittance_min: float = 1e-4
    tile_size: int = 4
    chunk: int = 0  # Gaussians per tile and compositing step; 0: sized by the number of pixels


@dataclass
class RenderOutput:
    """Images [B, H, W, C] and the per-camera screen-space data densification needs.

    `means2d` [B, N, 2] are the projected centres in pixels; when the Gaussians require grad,
    their gradient is retained, so after `backward()` `means2d.grad` holds dL/d(pixel position).
    `radii` [B, N] is the on-screen 3-sigma radius in pixels (0 where not visible).
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    means2d: Tensor
    radii: Tensor
    visible: Tensor

    @property
    def width(self) -> int:
        return self.rgb.shape[2]

    def views(self, index: slice) -> "RenderOutput":
        """The outputs of some of the cameras (for densification, use `screen_stats(index)` of the whole)."""
        return RenderOutput(
            rgb=self.rgb[index], alpha=self.alpha[index], depth=self.depth[index], means2d=self.means2d[index],
            radii=self.radii[index], visible=self.visible[index],
        )

    @property
    def height(self) -> int:
        return self.rgb.shape[1]

    def screen_stats(self, cameras: slice = slice(None)) -> ScreenStats:
        """The record densification reads, of all or some `cameras` (call after `backward()` so the gradient is there)."""
        grad = None if self.means2d.grad is None else self.means2d.grad[cameras]
        return ScreenStats(grad, self.radii[cameras], self.visible[cameras], self.width, self.height)


def rasterize(
    gaussians: Gaussians,
    cameras: Cameras,
    background: Tensor,
    backend: Backend = "auto",
    settings: RasterSettings | None = None,
) -> RenderOutput:
    """Render `gaussians` into every camera of `cameras` over `background` ([3] or [B, 3])."""
    settings = settings or RasterSettings()
    background = _background(background, len(cameras), gaussians.means)
    if resolve_backend(backend, gaussians.means.device) == "gsplat":
        from tv3dg.render.gsplat_backend import rasterize_gsplat

        return rasterize_gsplat(gaussians, cameras, background, settings)
    return rasterize_torch(gaussians, cameras, background, settings)


def resolve_backend(backend: Backend, device: torch.device) -> Literal["torch", "gsplat"]:
    """The backend that `backend` means on `device` (auto: gsplat on CUDA when importable)."""
    if backend == "torch":
        return "torch"
    cuda_ready = device.type == "cuda" and torch.cuda.is_available()
    if backend == "gsplat":
        if not cuda_ready or not gsplat_available():
            raise RuntimeError("the gsplat backend needs CUDA tensors and `pip install 'tv3dg[gpu]'`")
        return "gsplat"
    if backend == "auto":
        return "gsplat" if cuda_ready and gsplat_available() else "torch"
    raise ValueError(f"unknown rasterizer backend {backend!r}; use auto, torch or gsplat")


def gsplat_available() -> bool:
    try:
        import gsplat  # noqa: F401
    except Exception:  # an installed gsplat can fail at import (missing CUDA toolkit, ABI mismatch)
        return False
    return True


def rasterize_torch(gaussians: Gaussians, cameras: Cameras, background: Tensor, settings: RasterSettings) -> RenderOutput:
    """The pure-PyTorch backend (see the module docstrings of projection, binning and composite)."""
    batch, n = len(cameras), gaussians.num_points
    opacities = gaussians.opacities[:, 0]
    proj = project_gaussians(
        gaussians.means, gaussians.covariances(), opacities, cameras,
        near_plane=settings.near_plane, eps2d=settings.eps2d,
        sigma_cutoff=settings.sigma_cutoff, alpha_min=settings.alpha_min,
    )
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    log_opacities = torch.nn.functional.logsigmoid(gaussians.opacity_logits)
    colors = gaussians.colors(gaussians.means[None] - cameras.centers.to(gaussians.means.dtype)[:, None])
    table = torch.cat(
        [means2d, proj.conics, log_opacities.expand(batch, n, 1), colors, proj.depths[..., None]], dim=-1
    ).flatten(0, 1)
    bins = bin_gaussians(means2d, proj.extents, proj.depths, proj.visible, cameras.width, cameras.height, settings.tile_size)
    composite_settings = CompositeSettings(
        q_cutoff=settings.sigma_cutoff**2, alpha_min=settings.alpha_min, alpha_max=settings.alpha_max,
        transmittance_min=settings.transmittance_min, chunk=settings.chunk,
    )
    features, trans = composite(table, bins, batch, cameras.width, cameras.height, composite_settings)
    trans = trans[..., None]
    rgb = features[..., :3] + trans * background[:, None, None, :]
    return RenderOutput(
        rgb=rgb, alpha=1.0 - trans, depth=features[..., 3:4], means2d=means2d, radii=proj.radii, visible=proj.visible
    )


def _background(background: Tensor, batch: int, like: Tensor) -> Tensor:
    background = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    if background.shape == (3,):
        return background.expand(batch, 3)
    if background.shape == (batch, 3):
        return background
    raise ValueError(f"background must have shape [3] or [{batch}, 3], got {tuple(background.shape)}")
