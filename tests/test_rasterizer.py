"""The pure-PyTorch rasterizer against the brute-force reference, finite differences and geometry."""

import math

import pytest
import torch

from tv3dg.gaussians.model import Gaussians
from tv3dg.render.cameras import orbit_cameras
from tv3dg.render.projection import project_gaussians
from tv3dg.render.rasterizer import RasterSettings, rasterize, resolve_backend
from tv3dg.render.reference import rasterize_reference


def random_gaussians(n: int, seed: int = 0, dtype=torch.float64, sh_degree: int = 3, spread: float = 0.5) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    rest = (sh_degree + 1) ** 2 - 1
    return Gaussians(
        means=torch.randn(n, 3, generator=gen, dtype=dtype) * spread,
        log_scales=torch.log(torch.rand(n, 3, generator=gen, dtype=dtype) * 0.15 + 0.03),
        quats=torch.randn(n, 4, generator=gen, dtype=dtype),
        opacity_logits=torch.randn(n, 1, generator=gen, dtype=dtype) * 1.5,
        sh_dc=torch.randn(n, 1, 3, generator=gen, dtype=dtype),
        sh_rest=torch.randn(n, rest, 3, generator=gen, dtype=dtype) * 0.2,
    )


def two_cameras(dtype=torch.float64, width: int = 30, height: int = 22):
    return orbit_cameras([10.0, 35.0], [0.0, 110.0], [3.0, 2.6], 45.0, width, height, dtype=dtype)


def weighted_loss(out, seed: int = 1):
    """A loss that weighs every output channel differently, so every gradient path is exercised."""
    gen = torch.Generator().manual_seed(seed)
    terms = [out.rgb, out.alpha, out.depth]
    return sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum() for t in terms)


# Multi-chunk (chunk=5) and partial tiles (30x22 is not a multiple of 8); no early termination,
# which the reference does not do.
EXACT = RasterSettings(transmittance_min=0.0, tile_size=8, chunk=5)


@pytest.mark.parametrize("tile_size", [4, 8, 16])
def test_forward_matches_brute_force_reference(tile_size):
    gaussians, cameras = random_gaussians(80), two_cameras()
    background = torch.tensor([[0.2, 0.5, 0.9], [1.0, 1.0, 1.0]], dtype=torch.float64)
    settings = RasterSettings(transmittance_min=0.0, tile_size=tile_size, chunk=7)
    out = rasterize(gaussians, cameras, background, backend="torch", settings=settings)
    ref = rasterize_reference(gaussians, cameras, background, settings=settings)
    assert out.rgb.shape == (2, 22, 30, 3) and out.alpha.shape == (2, 22, 30, 1) and out.depth.shape == (2, 22, 30, 1)
    assert ref.alpha.max() > 0.9 and ref.alpha.min() < 0.1  # the scene has both covered and empty pixels
    for name in ("rgb", "alpha", "depth"):
        # float64 sums of <= 80 terms of size <= ~3: reassociation error ~80 * 2.2e-16 * 3 = 5e-14
        torch.testing.assert_close(getattr(out, name), getattr(ref, name), rtol=0, atol=1e-10)


def test_gradients_match_brute_force_reference():
    gaussians, cameras = random_gaussians(60, seed=3), two_cameras()
    background = torch.tensor([0.3, 0.3, 0.3], dtype=torch.float64)
    out = rasterize(gaussians, cameras, background, backend="torch", settings=EXACT)
    ref = rasterize_reference(gaussians, cameras, background, settings=EXACT)
    grads = torch.autograd.grad(weighted_loss(out), list(gaussians.parameters()))
    ref_grads = torch.autograd.grad(weighted_loss(ref), list(gaussians.parameters()))
    for (name, _), got, want in zip(gaussians.named_parameters(), grads, ref_grads):
        assert want.abs().max() > 0, name
        # float64 gradients summed over ~1300 pixels: ~1e3 * 2.2e-16 relative, far inside rtol 1e-7
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-9, msg=name)


def test_float32_matches_float64_reference():
    """Float32 (the training precision) stays within what an 8-bit image can show."""
    gaussians64, cameras64 = random_gaussians(80, seed=5), two_cameras()
    gaussians32 = Gaussians.from_state_dict({k: v.float() for k, v in gaussians64.state_dict().items()})
    background = torch.ones(3)
    out = rasterize(gaussians32, two_cameras(torch.float32), background, backend="torch")
    ref = rasterize_reference(gaussians64, cameras64, background.double(), RasterSettings(transmittance_min=0.0))
    assert (out.rgb.double() - ref.rgb).abs().max() < 1e-3
    assert (out.alpha.double() - ref.alpha).abs().max() < 1e-3


def test_gradcheck_in_float64():
    """Finite differences agree with the hand-written backward (smooth settings: no cut-offs to cross)."""
    gaussians = random_gaussians(4, seed=7, sh_degree=1, spread=0.25)
    cameras = orbit_cameras(20.0, 30.0, 2.5, 50.0, 9, 8, dtype=torch.float64)
    smooth = RasterSettings(sigma_cutoff=12.0, alpha_min=1e-12, alpha_max=0.999, transmittance_min=0.0, tile_size=4, chunk=3)
    with torch.no_grad():
        gaussians.opacity_logits.clamp_(max=2.0)  # keep every alpha under alpha_max
    names = [name for name, _ in gaussians.named_parameters()]
    background = torch.tensor([0.1, 0.7, 0.4], dtype=torch.float64)

    class Render(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gaussians = gaussians

        def forward(self):
            out = rasterize(self.gaussians, cameras, background, backend="torch", settings=smooth)
            return out.rgb, out.alpha, out.depth

    module = Render()

    def render(*params):
        return torch.func.functional_call(module, {f"gaussians.{k}": v for k, v in zip(names, params)}, ())

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in gaussians.parameters())
    assert torch.autograd.gradcheck(render, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_batch_renders_like_single_cameras():
    gaussians = random_gaussians(50, seed=11, dtype=torch.float32)
    cameras = orbit_cameras([0.0, 20.0, -10.0], [0.0, 120.0, 240.0], 3.0, 40.0, 24)
    background = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.2, 0.1]])
    batch = rasterize(gaussians, cameras, background, backend="torch")
    for i in range(3):
        single = rasterize(gaussians, cameras[i], background[i], backend="torch")
        # Float32 over up to 50 composited splats with colours up to ~3 and depths ~3: the batch and
        # the single render group the sums differently (and SIMD widths differ across CPUs), which
        # moves a pixel by about N * eps * |value| = 50 * 1.2e-7 * 3 = 2e-5 at worst (1.3e-6 seen
        # with AVX2 kernels, 2e-6 on an AMD EPYC). 1e-4 keeps a 5x margin, is 40x below one 8-bit
        # step, and a batching bug (another row's camera or background) moves pixels by > 0.1.
        torch.testing.assert_close(batch.rgb[i : i + 1], single.rgb, rtol=0, atol=1e-4)
        torch.testing.assert_close(batch.depth[i : i + 1], single.depth, rtol=0, atol=1e-4)


def test_empty_view_is_the_background():
    gaussians = random_gaussians(20, dtype=torch.float32)
    with torch.no_grad():
        gaussians.means.add_(torch.tensor([0.0, 0.0, 50.0]))  # all behind a camera looking from +Z
    cameras = orbit_cameras(0.0, 0.0, 3.0, 40.0, 16)
    out = rasterize(gaussians, cameras, torch.tensor([0.25, 0.5, 0.75]), backend="torch")
    assert not out.visible.any()
    assert torch.equal(out.rgb, torch.tensor([0.25, 0.5, 0.75]).expand(1, 16, 16, 3))
    assert torch.equal(out.alpha, torch.zeros(1, 16, 16, 1)) and torch.equal(out.depth, torch.zeros(1, 16, 16, 1))
    nothing = Gaussians.from_state_dict({k: v[:0] for k, v in gaussians.state_dict().items() if v.dim()})
    assert torch.equal(rasterize(nothing, cameras, torch.ones(3), backend="torch").rgb, torch.ones(1, 16, 16, 3))


def test_early_termination_skips_hidden_gaussians_within_its_bound():
    """Behind an opaque wall, a Gaussian gets no gradient once termination cuts it, and the image
    changes by less than the transmittance threshold."""
    grid = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 20), torch.linspace(-1, 1, 20), indexing="ij"), -1).reshape(-1, 2)
    wall = [torch.cat([grid, torch.full((400, 1), z)], 1) for z in (0.5, 0.4)]  # two layers, nothing shows through
    means = torch.cat(wall + [torch.tensor([[0.0, 0.0, -0.5]])])
    n = means.shape[0]
    gaussians = Gaussians(
        means=means, log_scales=torch.full((n, 3), math.log(0.12)), quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        opacity_logits=torch.full((n, 1), 4.0), sh_dc=torch.randn(n, 1, 3), sh_rest=torch.zeros(n, 0, 3),
    )
    cameras = orbit_cameras(0.0, 0.0, 3.0, 30.0, 32)  # looks along -Z: the wall (z=0.5) is in front
    background = torch.zeros(3)
    # Termination is checked between chunks: narrow ones, so that the hidden Gaussian is in a later chunk.
    cut = rasterize(gaussians, cameras, background, backend="torch", settings=RasterSettings(transmittance_min=1e-3, chunk=32))
    full = rasterize(gaussians, cameras, background, backend="torch", settings=RasterSettings(transmittance_min=0.0, chunk=32))
    assert (cut.rgb - full.rgb).abs().max() < 1e-3 * 3.0  # colours are bounded by ~3 here
    hidden_grad = torch.autograd.grad(cut.rgb.sum(), gaussians.sh_dc)[0][-1]
    full_grad = torch.autograd.grad(full.rgb.sum(), gaussians.sh_dc)[0][-1]
    assert torch.equal(hidden_grad, torch.zeros(1, 3)) and full_grad.abs().max() > 0


def test_depth_is_unnormalised_expected_depth():
    """One opaque Gaussian facing the camera at distance 2: depth / alpha = 2 where it covers."""
    gaussians = Gaussians(
        means=torch.zeros(1, 3), log_scales=torch.log(torch.tensor([[0.5, 0.5, 0.01]])),
        quats=torch.tensor([[1.0, 0, 0, 0]]), opacity_logits=torch.tensor([[8.0]]),
        sh_dc=torch.zeros(1, 1, 3), sh_rest=torch.zeros(1, 0, 3),
    )
    cameras = orbit_cameras(0.0, 0.0, 2.0, 40.0, 17)
    with torch.no_grad():
        out = rasterize(gaussians, cameras, torch.zeros(3), backend="torch")
    centre = out.alpha[0, 8, 8, 0].item()
    assert centre == pytest.approx(0.99, abs=1e-4)  # capped at alpha_max
    assert out.depth[0, 8, 8, 0].item() == pytest.approx(2.0 * centre, rel=1e-5)
    covered = out.alpha[0, ..., 0] > 0.05
    torch.testing.assert_close(out.depth[0, ..., 0][covered] / out.alpha[0, ..., 0][covered],
                               torch.full_like(out.depth[0, ..., 0][covered], 2.0), rtol=1e-3, atol=0)


def test_ewa_projection_matches_projected_samples():
    """The projected 2D covariance is the covariance of projected 3D samples (+ the low-pass eps2d)."""
    torch.manual_seed(0)
    gaussians = random_gaussians(1, seed=2, dtype=torch.float64, sh_degree=0, spread=0.1)
    cameras = orbit_cameras(25.0, 40.0, 6.0, 40.0, 64, dtype=torch.float64)
    proj = project_gaussians(gaussians.means, gaussians.covariances(), gaussians.opacities[:, 0], cameras, eps2d=0.0)
    samples = torch.distributions.MultivariateNormal(gaussians.means[0].detach(), gaussians.covariances()[0].detach())
    points = samples.sample((200_000,))
    cam = (cameras.world_to_cam[0, :3, :3] @ points.T).T + cameras.world_to_cam[0, :3, 3]
    uv = torch.stack([cameras.fx[0] * cam[:, 0] / cam[:, 2] + cameras.cx[0], cameras.fy[0] * cam[:, 1] / cam[:, 2] + cameras.cy[0]], 1)
    a, b, c = proj.conics[0, 0].detach()
    cov2d = torch.linalg.inv(torch.stack([torch.stack([a, b]), torch.stack([b, c])]))
    empirical = torch.cov(uv.T)
    # The local affine model neglects second-order perspective terms: a few hundredths of a pixel here.
    torch.testing.assert_close(proj.means2d[0, 0].detach(), uv.mean(0), rtol=0, atol=0.05)
    torch.testing.assert_close(cov2d, empirical, rtol=0.02, atol=0.02)
    assert empirical.diagonal().min() > 1.0  # a footprint of several pixels, so the check has teeth


def test_means2d_gradient_is_retained_for_densification():
    gaussians = random_gaussians(30, dtype=torch.float32)
    out = rasterize(gaussians, two_cameras(torch.float32), torch.ones(3), backend="torch")
    out.rgb.sum().backward()
    assert out.means2d.grad is not None and out.means2d.grad.shape == (2, 30, 2)
    assert (out.means2d.grad[~out.visible] == 0).all() and out.means2d.grad[out.visible].abs().sum() > 0
    assert (out.radii[out.visible] > 0).all() and (out.radii[~out.visible] == 0).all()


def test_backend_auto_is_torch_without_cuda():
    assert resolve_backend("auto", torch.device("cpu")) == "torch"
    with pytest.raises(RuntimeError, match="gsplat"):
        resolve_backend("gsplat", torch.device("cpu"))
    with pytest.raises(ValueError):
        rasterize(random_gaussians(3, dtype=torch.float32), two_cameras(torch.float32), torch.ones(2), backend="torch")
