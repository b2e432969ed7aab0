"""Mesh export recovers the surface and colours of a known Gaussian shell."""

import numpy as np
import pytest
import torch
import trimesh

from tv3dg.errors import UserError
from tv3dg.export.mesh import MeshConfig, density_grid, extract_mesh, save_mesh


def _sphere_shell(n: int = 2000, radius: float = 0.8):
    gen = torch.Generator().manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
    means = dirs * radius
    covariances = torch.eye(3).expand(n, 3, 3) * 0.06**2
    colors = (dirs + 1) / 2
    return means, covariances, torch.full((n,), 0.9), colors


def test_mesh_of_a_sphere_shell_lies_on_the_shell_with_its_colours(tmp_path):
    means, cov, opacity, colors = _sphere_shell()
    mesh = extract_mesh(density_grid(means, cov, opacity, colors, MeshConfig(resolution=48)), threshold=0.5)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    # The shell has thickness ~ a few sigma (0.06): its inner and outer sheets lie within 0.25 of r=0.8.
    assert np.all(np.abs(radii - 0.8) < 0.25)
    expected = (mesh.vertices / radii[:, None] + 1) / 2
    got = mesh.visual.vertex_colors[:, :3] / 255.0
    assert np.abs(got - expected).mean() < 0.08
    for name in ("mesh.glb", "mesh.obj"):
        save_mesh(mesh, tmp_path / name)
        loaded = trimesh.load(tmp_path / name, force="mesh")
        assert len(loaded.faces) > 100
        assert loaded.visual.kind == "vertex"


def test_transparent_gaussians_give_a_clear_error():
    means, cov, _, colors = _sphere_shell(50)
    with pytest.raises(UserError, match="transparent"):
        density_grid(means, cov, torch.zeros(50), colors, MeshConfig())


def test_unknown_mesh_suffix_is_rejected(tmp_path):
    with pytest.raises(UserError, match=".glb, .obj"):
        save_mesh(trimesh.creation.box(), tmp_path / "mesh.stl")
