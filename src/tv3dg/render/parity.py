"""The gsplat and torch backends on the same scene: how far apart their images are.

Used by `tv3dg doctor` (a small scene: do the installed gsplat kernels draw what ours draw?) and
by `benchmarks/gpu.py` (100k Gaussians at 512 px). The alpha caps differ (0.99 here, 0.999 in
gsplat), so the images agree on average, not pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.synthetic import beach_ball
from tv3dg.render.cameras import Cameras, turntable_cameras
from tv3dg.render.rasterizer import RasterSettings, rasterize

MEAN_ABS_TOLERANCE = 5e-3  # mean |rgb| and |alpha| difference the two backends stay under on a scene of moderate opacity


@dataclass
class Parity:
    rgb: float  # mean absolute difference of the colour images
    alpha: float
    visible: float  # fraction of (view, Gaussian) pairs that one backend draws and the other does not

    @property
    def agrees(self) -> bool:
        return self.rgb < MEAN_ABS_TOLERANCE and self.alpha < MEAN_ABS_TOLERANCE


def parity_scene(points: int, views: int, resolution: int, device: torch.device) -> tuple[Gaussians, Cameras]:
    """The sample beach ball (opacity 0.95, under both alpha caps), seen from `views` sides."""
    return beach_ball(points).to(device), turntable_cameras(views, 20.0, 3.0, 40.0, resolution, device=device)


@torch.no_grad()
def backend_parity(gaussians: Gaussians, cameras: Cameras, background: torch.Tensor) -> Parity:
    """Render with both backends (CUDA tensors) without early termination and compare."""
    settings = RasterSettings(transmittance_min=0.0)
    ours = rasterize(gaussians, cameras, background, backend="torch", settings=settings)
    theirs = rasterize(gaussians, cameras, background, backend="gsplat", settings=settings)
    return Parity(
        rgb=float((ours.rgb - theirs.rgb).abs().mean()),
        alpha=float((ours.alpha - theirs.alpha).abs().mean()),
        visible=float((ours.visible != theirs.visible).float().mean()),
    )
