"""Our projection and SH colour against gsplat's pure-torch reference (`gsplat.cuda._torch_impl`), on CPU.

gsplat cannot rasterize without CUDA, but its reference projection, world-to-camera transform and
SH evaluation are plain torch. Holding ours against them shows, without a GPU, that the torch and
gsplat backends share conventions: the OpenCV camera frame, world-to-camera `viewmats`, the pixel
centre at +0.5, the Jacobian clamp a little beyond the image, the `eps2d` low-pass, conics, depths,
the near plane and the SH basis and signs. Everything runs in float64, so the tolerances only
absorb reassociation (about 1e-12 relative on these sizes).

One convention differs on purpose and is pinned here: gsplat bounds a splat by a box of 3.33
standard deviations per axis, ours by 3 (further cut where `opacity * exp(-q/2) < alpha_min`). So
every Gaussian we draw, gsplat draws too; a few near the image border that only gsplat's wider
box reaches are drawn by gsplat alone, and those contribute under exp(-9/2) = 1.1% of their alpha.
"""

from __future__ import annotations

import math

import pytest
import torch

reference = pytest.importorskip("gsplat.cuda._torch_impl", reason="gsplat is not installed (pip install 'tv3dg[gpu]')")

from tv3dg.gaussians.model import Gaussians  # noqa: E402
from tv3dg.gaussians.sh import eval_sh  # noqa: E402
from tv3dg.render.cameras import Cameras, orbit_cameras  # noqa: E402
from tv3dg.render.projection import project_gaussians  # noqa: E402

WIDTH, HEIGHT = 96, 64
EPS2D, NEAR = 0.3, 0.01
SIGMA_CUTOFF = 3.0
GSPLAT_SIGMAS = 3.33  # gsplat's per-axis bound, see the module docstring
RTOL = 1e-9


def cameras() -> Cameras:
    return orbit_cameras([10.0, 35.0, -5.0], [0.0, 110.0, 230.0], [3.0, 2.6, 3.4], [45.0, 40.0, 50.0], WIDTH, HEIGHT,
                         dtype=torch.float64)


def intrinsics(cams: Cameras) -> torch.Tensor:
    ks = torch.zeros(len(cams), 3, 3, dtype=torch.float64)
    ks[:, 0, 0], ks[:, 1, 1], ks[:, 0, 2], ks[:, 1, 2], ks[:, 2, 2] = cams.fx, cams.fy, cams.cx, cams.cy, 1.0
    return ks


def scene(cams: Cameras, seed: int = 0) -> Gaussians:
    """Gaussians placed through the first camera's pixels: inside the image, just outside its border,
    far outside the frustum (where the Jacobian clamp acts), behind the camera and before its near plane."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float, n: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)

    groups = []  # (u, v, z) in the first camera
    n = 400
    groups.append((uniform(0, WIDTH, n), uniform(0, HEIGHT, n), uniform(1.0, 5.0, n)))  # inside
    side = torch.rand(n, generator=gen) < 0.5  # just outside the left or right edge, or the top or bottom
    groups.append((torch.where(side, uniform(-12, 0, n), uniform(WIDTH, WIDTH + 12, n)), uniform(0, HEIGHT, n), uniform(1.5, 4.0, n)))
    groups.append((uniform(0, WIDTH, n), torch.where(side, uniform(-12, 0, n), uniform(HEIGHT, HEIGHT + 12, n)), uniform(1.5, 4.0, n)))
    groups.append((uniform(-6 * WIDTH, 7 * WIDTH, n), uniform(-6 * HEIGHT, 7 * HEIGHT, n), uniform(0.5, 4.0, n)))  # off frustum
    groups.append((uniform(0, WIDTH, n), uniform(0, HEIGHT, n), uniform(-3.0, 0.0, n)))  # behind
    groups.append((uniform(0, WIDTH, n), uniform(0, HEIGHT, n), uniform(0.0, NEAR, n)))  # before the near plane
    u, v, z = (torch.cat(parts) for parts in zip(*groups))
    first = cams[0]
    x = (u - first.cx) / first.fx * z
    y = (v - first.cy) / first.fy * z
    cam_points = torch.stack([x, y, z], dim=-1)
    rot, trans = first.world_to_cam[0, :3, :3], first.world_to_cam[0, :3, 3]
    means = (cam_points - trans) @ rot  # R^T (p - t)
    count = len(means)
    rest = 15
    return Gaussians(
        means=means,
        log_scales=torch.log(uniform(0.005, 0.08, 3 * count).reshape(count, 3)),
        quats=torch.randn(count, 4, generator=gen, dtype=torch.float64),
        opacity_logits=torch.full((count, 1), 20.0, dtype=torch.float64),  # opacity 1: the 3-sigma cut alone bounds the box
        sh_dc=torch.randn(count, 1, 3, generator=gen, dtype=torch.float64),
        sh_rest=torch.randn(count, rest, 3, generator=gen, dtype=torch.float64) * 0.3,
    )


@pytest.fixture(scope="module")
def setup():
    cams = cameras()
    gaussians = scene(cams)
    with torch.no_grad():
        covariances = gaussians.covariances()
        ours = project_gaussians(gaussians.means, covariances, gaussians.opacities[:, 0], cams, near_plane=NEAR,
                                 eps2d=EPS2D, sigma_cutoff=SIGMA_CUTOFF)
        radii, means2d, depths, conics, _ = reference._fully_fused_projection(
            gaussians.means, covariances, cams.world_to_cam, intrinsics(cams), WIDTH, HEIGHT, eps2d=EPS2D, near_plane=NEAR
        )
    return cams, gaussians, covariances, ours, (radii, means2d, depths, conics)


def test_covariances_match_gsplat_quaternion_convention(setup):
    _, gaussians, covariances, _, _ = setup
    theirs, _ = reference._quat_scale_to_covar_preci(gaussians.rotations, gaussians.scales, compute_preci=False)
    torch.testing.assert_close(covariances, theirs, rtol=RTOL, atol=1e-15)


def test_world_to_cam_and_perspective_projection_match(setup):
    cams, gaussians, covariances, ours, _ = setup
    means_c, covars_c = reference._world_to_cam(gaussians.means, covariances, cams.world_to_cam)
    torch.testing.assert_close(ours.depths, means_c[..., 2], rtol=RTOL, atol=1e-12)
    front = means_c[..., 2] > NEAR
    means2d, cov2d = reference._persp_proj(means_c, covars_c, intrinsics(cams), WIDTH, HEIGHT)
    torch.testing.assert_close(ours.means2d[front], means2d[front], rtol=RTOL, atol=1e-9)
    # Our conic is the inverse of cov2d + eps2d * I: invert it back and compare with gsplat's cov2d.
    a, b, c = ours.conics.unbind(-1)
    det = a * c - b * b
    ours_cov = torch.stack([c / det - EPS2D, -b / det, -b / det, a / det - EPS2D], dim=-1).reshape(det.shape + (2, 2))
    scale = cov2d[front].abs().amax(dim=(-1, -2), keepdim=True) + 1.0  # pixels^2; far-off-frustum splats are large
    torch.testing.assert_close(ours_cov[front] / scale, cov2d[front] / scale, rtol=0, atol=1e-9)


def test_fully_fused_projection_matches_means_conics_depths(setup):
    _, _, _, ours, (radii, means2d, depths, conics) = setup
    torch.testing.assert_close(ours.depths, depths, rtol=RTOL, atol=1e-12)
    valid = radii.amax(dim=-1) > 0
    assert valid.sum() > 500
    torch.testing.assert_close(ours.means2d[valid], means2d[valid], rtol=RTOL, atol=1e-9)
    torch.testing.assert_close(ours.conics[valid], conics[valid], rtol=1e-7, atol=1e-12)


def test_near_plane_and_behind_camera_are_culled_by_both(setup):
    cams, gaussians, covariances, ours, (radii, _, depths, _) = setup
    not_in_front = depths <= NEAR
    assert not_in_front[0].sum() >= 800  # the behind and before-near groups, seen from the first camera
    assert not ours.visible[not_in_front].any()
    assert (radii[not_in_front] == 0).all()
    assert (ours.radii[not_in_front] == 0).all()


def test_visibility_at_the_border_differs_only_by_the_box_width(setup):
    """Ours is a subset of gsplat's; the difference lies exactly between our 3-sigma and gsplat's 3.33-sigma box."""
    _, _, _, ours, (radii, means2d, _, conics) = setup
    theirs_visible = radii.amax(dim=-1) > 0
    assert not (ours.visible & ~theirs_visible).any()
    only_theirs = theirs_visible & ~ours.visible
    assert only_theirs.sum() >= 5, "the scene must put Gaussians in the border band"
    assert only_theirs.float().mean() < 0.05
    det = conics[..., 0] * conics[..., 2] - conics[..., 1] ** 2
    sigma = torch.stack([conics[..., 2] / det, conics[..., 0] / det], dim=-1).sqrt()  # per-axis std of cov2d + eps2d
    lo, hi = means2d - SIGMA_CUTOFF * sigma, means2d + SIGMA_CUTOFF * sigma
    inside_three_sigma = (hi[..., 0] > 0) & (lo[..., 0] < WIDTH) & (hi[..., 1] > 0) & (lo[..., 1] < HEIGHT)
    assert not inside_three_sigma[only_theirs].any()


def test_radii_follow_each_convention(setup):
    """gsplat: ceil(3.33 sigma) per axis. Ours: the 3-sigma box half-size per axis (opacity 1 here),
    and a single radius ceil(3 sqrt(lambda_max)), which lies between the two per-axis bounds."""
    _, _, _, ours, (radii, _, _, conics) = setup
    both = ours.visible
    torch.testing.assert_close(torch.ceil(ours.extents[both] * GSPLAT_SIGMAS / SIGMA_CUTOFF), radii[both].double(),
                               rtol=0, atol=0)
    det = conics[..., 0] * conics[..., 2] - conics[..., 1] ** 2
    largest_axis = torch.maximum(conics[..., 2], conics[..., 0]) / det
    assert (ours.radii[both] >= torch.ceil(SIGMA_CUTOFF * largest_axis[both].sqrt()) - 1e-9).all()
    assert (ours.radii[both] <= torch.ceil(SIGMA_CUTOFF * (2 * largest_axis[both] + 0.4).sqrt()) + 1e-9).all()


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_colours_match(setup, degree):
    cams, gaussians, _, _, _ = setup
    with torch.no_grad():
        dirs = gaussians.means[None] - cams.centers[:, None]  # camera -> Gaussian, as both rasterizers use them
        coeffs = gaussians.sh_coeffs.expand(len(cams), -1, -1, -1)
        theirs = torch.clamp_min(reference._spherical_harmonics(degree, dirs, coeffs) + 0.5, 0.0)  # gsplat's colour rule
        ours = eval_sh(degree, gaussians.sh_coeffs, dirs)
    torch.testing.assert_close(ours, theirs, rtol=RTOL, atol=1e-12)
    assert (theirs > 0).float().mean() > 0.5 and math.isfinite(float(theirs.sum()))


def test_camera_centres_match_gsplat_viewmat_convention(setup):
    cams = setup[0]
    centres = torch.linalg.inv(cams.world_to_cam)[:, :3, 3]  # how gsplat's rasterization finds the camera
    torch.testing.assert_close(cams.centers, centres, rtol=RTOL, atol=1e-12)
