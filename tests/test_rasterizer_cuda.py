"""CUDA paths: the torch backend on the GPU and the optional gsplat backend (skipped without them)."""

import pytest
import torch

from test_rasterizer import random_gaussians, two_cameras
from tv3dg.render.rasterizer import RasterSettings, gsplat_available, rasterize, resolve_backend

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
needs_gsplat = pytest.mark.skipif(
    not (torch.cuda.is_available() and gsplat_available()), reason="needs a CUDA device and gsplat"
)
pytestmark = pytest.mark.cuda


@needs_cuda
def test_torch_backend_on_cuda_matches_cpu():
    gaussians = random_gaussians(200, dtype=torch.float32)
    cameras = two_cameras(torch.float32)
    cpu = rasterize(gaussians, cameras, torch.ones(3), backend="torch")
    gpu = rasterize(gaussians.cuda(), cameras.to("cuda"), torch.ones(3, device="cuda"), backend="torch")
    torch.testing.assert_close(gpu.rgb.cpu(), cpu.rgb, rtol=0, atol=1e-4)
    torch.testing.assert_close(gpu.depth.cpu(), cpu.depth, rtol=0, atol=1e-3)


@needs_gsplat
def test_auto_backend_picks_gsplat_on_cuda():
    assert resolve_backend("auto", torch.device("cuda")) == "gsplat"


@needs_gsplat
def test_gsplat_backend_matches_torch_backend():
    """Same image up to the backends' different alpha caps (0.99 vs 0.999): compare on average."""
    gaussians = random_gaussians(300, dtype=torch.float32).cuda()
    with torch.no_grad():
        gaussians.opacity_logits.clamp_(max=3.0)  # alphas below both caps
    cameras = two_cameras(torch.float32, 64, 48).to("cuda")
    background = torch.tensor([0.2, 0.4, 0.6], device="cuda")
    settings = RasterSettings(transmittance_min=0.0)
    ours = rasterize(gaussians, cameras, background, backend="torch", settings=settings)
    theirs = rasterize(gaussians, cameras, background, backend="gsplat", settings=settings)
    assert (ours.rgb - theirs.rgb).abs().mean() < 5e-3
    assert (ours.alpha - theirs.alpha).abs().mean() < 5e-3
    assert (ours.visible != theirs.visible).float().mean() < 0.02


@needs_gsplat
def test_gsplat_backend_gives_screen_space_gradients():
    gaussians = random_gaussians(100, dtype=torch.float32).cuda()
    out = rasterize(gaussians, two_cameras(torch.float32).to("cuda"), torch.ones(3, device="cuda"), backend="gsplat")
    out.rgb.sum().backward()
    assert out.means2d.grad is not None and out.means2d.grad.shape == (2, 100, 2)
    assert gaussians.means.grad is not None and gaussians.means.grad.abs().sum() > 0
