"""Gaussian parameters, activations, SH colour, checkpoints and the optimiser set-up."""

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from tv3dg.config import from_dict
from tv3dg.gaussians.model import Gaussians, quaternion_to_matrix
from tv3dg.gaussians.optim import OptimConfig, build_optimizer, update_learning_rates
from tv3dg.gaussians.sh import eval_sh, rgb_to_sh_dc, sh_basis
from tv3dg.gaussians.synthetic import fibonacci_sphere


def test_sh_basis_is_orthonormal_on_the_sphere():
    dirs = fibonacci_sphere(20000).double()
    basis = sh_basis(3, dirs)  # [n, 16]
    gram = basis.T @ basis * (4 * math.pi / dirs.shape[0])
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), rtol=0, atol=2e-3)


def test_sh_basis_uses_the_3dgs_sign_convention():
    """Values at one direction against the basis constants published with 3DGS."""
    x, y, z = 0.48, 0.6, 0.64
    c1 = 0.4886025119029199
    c2 = [1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396]
    c3 = [-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
          -0.4570457994644658, 1.445305721320277, -0.5900435899266435]
    xx, yy, zz = x * x, y * y, z * z
    expected = [
        0.28209479177387814, -c1 * y, c1 * z, -c1 * x,
        c2[0] * x * y, c2[1] * y * z, c2[2] * (2 * zz - xx - yy), c2[3] * x * z, c2[4] * (xx - yy),
        c3[0] * y * (3 * xx - yy), c3[1] * x * y * z, c3[2] * y * (4 * zz - xx - yy),
        c3[3] * z * (2 * zz - 3 * xx - 3 * yy), c3[4] * x * (4 * zz - xx - yy), c3[5] * z * (xx - yy),
        c3[6] * x * (xx - 3 * yy),
    ]
    got = sh_basis(3, torch.tensor([x, y, z], dtype=torch.float64))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_view_dependent_colour_uses_only_the_active_bands():
    coeffs = torch.zeros(1, 16, 3)
    coeffs[0, 0] = rgb_to_sh_dc(torch.tensor([0.2, 0.4, 0.6]))
    coeffs[0, 3] = torch.tensor([-1.0, 0.0, 0.0])  # the -C1 * x band: more red seen looking along +x
    along_x = torch.tensor([[5.0, 0.0, 0.0]])  # need not be normalised
    torch.testing.assert_close(eval_sh(0, coeffs, along_x), torch.tensor([[0.2, 0.4, 0.6]]))
    torch.testing.assert_close(eval_sh(1, coeffs, along_x), torch.tensor([[0.2 + 0.4886025, 0.4, 0.6]]))
    assert eval_sh(1, -coeffs * 10, along_x).min() == 0  # clamped at zero, never negative


def test_from_points_renders_the_given_colours_and_sizes():
    xyz = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.3, 0.3, 0.9]])
    g = Gaussians.from_points(xyz, rgb, sh_degree=2, opacity=0.3)
    assert g.num_points == 3 and g.max_sh_degree == 2 and g.active_sh_degree == 0
    assert g.sh_rest.shape == (3, 8, 3) and g.sh_dc.shape == (3, 1, 3)
    torch.testing.assert_close(g.colors(torch.randn(3, 3)), rgb)
    torch.testing.assert_close(g.opacities, torch.full((3, 1), 0.3))
    torch.testing.assert_close(g.scales[:, 0], torch.tensor([1.0, 1.0, 2.0]))  # nearest-neighbour distances
    torch.testing.assert_close(g.rotations, torch.tensor([[1.0, 0, 0, 0]]).expand(3, 4))


def test_covariance_is_rotated_scale_squared():
    angle = 0.7
    quat = torch.tensor([[math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)]]) * 3.0  # unnormalised on purpose
    g = Gaussians(
        means=torch.zeros(1, 3), log_scales=torch.log(torch.tensor([[2.0, 0.5, 1.0]])), quats=quat,
        opacity_logits=torch.zeros(1, 1), sh_dc=torch.zeros(1, 1, 3), sh_rest=torch.zeros(1, 0, 3),
    )
    rot = quaternion_to_matrix(g.rotations)[0]
    axis_x = torch.tensor([math.cos(angle), math.sin(angle), 0.0])  # x axis turned about z
    torch.testing.assert_close(rot[:, 0], axis_x)
    cov = g.covariances()[0]
    torch.testing.assert_close(axis_x @ cov @ axis_x, torch.tensor(4.0))  # variance along the rotated x axis
    torch.testing.assert_close(torch.linalg.eigvalsh(cov), torch.tensor([0.25, 1.0, 4.0]))


def test_checkpoint_round_trip_through_safetensors(tmp_path):
    g = Gaussians.from_points(torch.randn(10, 3), torch.rand(10, 3), sh_degree=3, active_sh_degree=1)
    g.increase_sh_degree()
    save_file(g.state_dict(), tmp_path / "g.safetensors")
    back = Gaussians.from_state_dict(load_file(tmp_path / "g.safetensors"))
    assert back.active_sh_degree == 2 and back.max_sh_degree == 3
    for (name, a), (_, b) in zip(g.named_parameters(), back.named_parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="active_sh_degree"):
        back.active_sh_degree = 4


def test_wrong_shapes_are_rejected():
    with pytest.raises(ValueError, match="quats"):
        Gaussians(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 1),
                  torch.zeros(2, 1, 3), torch.zeros(2, 0, 3))
    with pytest.raises(ValueError, match="SH"):
        Gaussians(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 1),
                  torch.zeros(2, 1, 3), torch.zeros(2, 5, 3))


def test_optimizer_has_one_named_group_per_parameter_with_scheduled_rates():
    g = Gaussians.from_points(torch.randn(5, 3), torch.rand(5, 3), sh_degree=1)
    config = from_dict(OptimConfig, {"means": [0, 1e-3, 1e-5, 100], "opacity_logits": 0.02})
    opt = build_optimizer(g, config)
    groups = {group["name"]: group for group in opt.param_groups}
    assert set(groups) == {"means", "log_scales", "quats", "opacity_logits", "sh_dc", "sh_rest"}
    for name, group in groups.items():
        assert group["params"] == [getattr(g, name)]
    assert groups["means"]["lr"] == pytest.approx(1e-3) and groups["opacity_logits"]["lr"] == pytest.approx(0.02)
    rates = update_learning_rates(opt, config, 50)
    assert groups["means"]["lr"] == pytest.approx(0.5 * (1e-3 + 1e-5)) == rates["means"]
    update_learning_rates(opt, config, 1000)
    assert groups["means"]["lr"] == pytest.approx(1e-5) and groups["sh_dc"]["lr"] == pytest.approx(2.5e-3)
