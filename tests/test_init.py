"""Initialisers: sphere/box, the user's mesh, point cloud or Gaussian .ply."""

import numpy as np
import pytest
import torch
import trimesh

from tv3dg.errors import UserError
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.ply import save_ply
from tv3dg.init.initializers import InitConfig, initial_gaussians


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_sphere_points_lie_inside_the_radius():
    g = initial_gaussians(InitConfig(kind="sphere", num_points=500, radius=0.4), "", 0, _gen())
    assert g.num_points == 500 and g.means.norm(dim=-1).max() <= 0.4 + 1e-6


def test_mesh_init_samples_its_surface_with_its_colours(tmp_path):
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    box.visual.vertex_colors = np.tile([255, 0, 0, 255], (len(box.vertices), 1))
    box.export(tmp_path / "box.obj")
    g = initial_gaussians(InitConfig(kind="file", path=str(tmp_path / "box.obj"), num_points=400), "", 1, _gen())
    on_surface = (g.means.abs().max(dim=-1).values - 0.5).abs() < 1e-4
    assert g.num_points == 400 and bool(on_surface.all())
    rgb = g.sh_dc[:, 0] * 0.28209479 + 0.5
    assert torch.allclose(rgb.mean(0), torch.tensor([1.0, 0.0, 0.0]), atol=0.02)


def test_point_cloud_ply_is_subsampled(tmp_path):
    points = np.random.default_rng(0).uniform(-1, 1, (1000, 3))
    trimesh.PointCloud(points, colors=np.tile([0, 255, 0, 255], (1000, 1))).export(tmp_path / "cloud.ply")
    g = initial_gaussians(InitConfig(kind="file", path=str(tmp_path / "cloud.ply"), num_points=200), "", 0, _gen())
    assert g.num_points == 200 and g.means.abs().max() <= 1.0


def test_gaussian_ply_is_taken_as_it_is(tmp_path):
    source = Gaussians.from_points(torch.rand(50, 3), torch.rand(50, 3), sh_degree=2)
    save_ply(tmp_path / "asset.ply", source)
    g = initial_gaussians(InitConfig(kind="file", path=str(tmp_path / "asset.ply")), "", 0, _gen())
    assert g.num_points == 50 and g.max_sh_degree == 2
    torch.testing.assert_close(g.means, source.means)


@pytest.mark.parametrize("path, message", [(None, "init.path"), ("/nonexistent.obj", "does not exist")])
def test_file_init_errors_are_one_line(path, message):
    with pytest.raises(UserError, match=message):
        initial_gaussians(InitConfig(kind="file", path=path), "", 0, _gen())
