"""`init.kind=shap_e`: tiny random Shap-E pipelines saved and loaded back through `from_pretrained`,
the axis change into this project's convention, and the one-line errors of the initialisers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import trimesh
from diffusers import ShapEPipeline
from scipy.spatial import cKDTree
from tiny_shap_e import make_tiny_shap_e, make_tiny_shap_e_img2img

from tv3dg.errors import UserError
from tv3dg.gaussians.sh import sh_dc_to_rgb
from tv3dg.init import initializers
from tv3dg.init.initializers import InitConfig, check_initializer, initial_gaussians
from tv3dg.init.shap_e import SHAP_E_TO_WORLD, resolve_shap_e, shap_e_mesh, to_world

pytestmark = pytest.mark.slow  # Shap-E decodes a 128^3 grid: 10-30 s per mesh on a 2-core CPU


@pytest.fixture(scope="module")
def shap_e(tmp_path_factory):
    return make_tiny_shap_e(tmp_path_factory.mktemp("shap_e"))


def _closest_on_mesh(points: np.ndarray, mesh: trimesh.Trimesh, candidates: int = 16):
    """Distance [N] from each point to the nearest of the `candidates` faces whose centres are nearest,
    that face's index [N], the closest point [N,3] and its normal [N,3]. Over a subset of faces, so the
    distance is never below the true one: a bound that holds for it holds for the true distance."""
    _, faces = cKDTree(mesh.triangles_center).query(points, candidates)
    closest = trimesh.triangles.closest_point(mesh.triangles[faces].reshape(-1, 3, 3), np.repeat(points, candidates, axis=0))
    distance = np.linalg.norm(closest.reshape(len(points), candidates, 3) - points[:, None], axis=-1)
    best = distance.argmin(axis=1)
    face = faces[np.arange(len(points)), best]
    return distance.min(axis=1), faces, distance, closest.reshape(len(points), candidates, 3)[np.arange(len(points)), best], \
        mesh.face_normals[face]


def _fit_into_mesh(means: np.ndarray, mesh: trimesh.Trimesh) -> np.ndarray:
    """The world points mapped back into the mesh's frame by the similarity `to_world` applied (its
    rotation is known; its scale and centre depend on the samples): u * means + c with u, c fitted by
    point-to-plane least squares, starting from the bounding boxes."""
    u = np.ptp(mesh.vertices, axis=0).max() / np.ptp(means, axis=0).max()
    c = mesh.bounds.mean(axis=0)
    for _ in range(6):
        x = u * means + c
        _, _, _, closest, normals = _closest_on_mesh(x, mesh)
        rows = np.concatenate([(normals * means).sum(axis=1, keepdims=True), normals], axis=1)
        u, *c = np.linalg.lstsq(rows, (normals * closest).sum(axis=1), rcond=None)[0]
        c = np.asarray(c)
    return u * means + c


def test_shap_e_gaussians_lie_on_the_decoded_surface_with_its_colours(shap_e, monkeypatch):
    decoded = []

    def keep_mesh(*args, **kwargs):
        decoded.append(shap_e_mesh(*args, **kwargs))
        return decoded[-1]

    monkeypatch.setattr(initializers, "shap_e_mesh", keep_mesh)
    config = InitConfig(kind="shap_e", shap_e_model=str(shap_e), num_points=400, radius=0.5, shap_e_steps=2)
    check_initializer(config, "any/sd15-model")
    gaussians = initial_gaussians(config, "a corgi", 0, torch.Generator().manual_seed(0))
    assert gaussians.num_points == 400
    means = gaussians.means.detach()
    assert abs(float(means.norm(dim=1).max()) - 0.5) < 1e-5  # farthest sample at init.radius

    # The decoded mesh in world axes (Shap-E's z-up turned y-up), then the similarity fitted: every point lies
    # on that surface. Bound: float32 rounding of points of size <= 1 through to_world is a few 1e-7; 1e-5
    # is 1/1600 of the mesh's mean edge (~0.016, a 128^3 grid over [-1, 1]), so a point sampled off the
    # surface (inside a cell, at a vertex's neighbour, with a wrong axis) fails by orders of magnitude.
    mesh = decoded[0].copy()
    mesh.vertices = mesh.vertices @ SHAP_E_TO_WORLD.numpy().T.astype(np.float64)
    points = _fit_into_mesh(means.numpy().astype(np.float64), mesh)
    distance, faces, distances, _, _ = _closest_on_mesh(points, mesh)
    assert distance.max() < 1e-5, distance.max()

    # Colours: the mean of its face's three vertex colours (to float32 rounding), for one of the faces the
    # point touches (a point on an edge touches two); the mesh's colours vary, so no constant passes.
    vertex_colours = np.asarray(decoded[0].visual.vertex_colors)[:, :3] / 255.0
    assert vertex_colours.std(axis=0).min() > 0.05
    face_colours = vertex_colours[np.asarray(mesh.faces)].mean(axis=1)  # [F, 3]
    colours = sh_dc_to_rgb(gaussians.sh_dc.detach()[:, 0]).numpy()
    error = np.abs(face_colours[faces] - colours[:, None]).max(axis=-1)  # [N, candidates]
    touching = distances < 1e-5
    assert np.all((np.where(touching, error, np.inf)).min(axis=1) < 1e-5)
    assert torch.isfinite(gaussians.log_scales).all()


def test_a_texture_visual_prompt_starts_shap_e_from_the_image(shap_e, tmp_path):
    image_model = make_tiny_shap_e_img2img(tmp_path / "img2img")
    config = InitConfig(kind="shap_e", shap_e_model=str(shap_e), shap_e_image_model=str(image_model),
                        num_points=300, radius=0.6, shap_e_steps=2)
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    gaussians = initial_gaussians(config, "a corgi", 0, torch.Generator().manual_seed(0), texture_image=image)
    assert gaussians.num_points == 300
    assert abs(float(gaussians.means.detach().norm(dim=1).max()) - 0.6) < 1e-5


def test_shap_e_axes_become_y_up_with_the_front_on_plus_z():
    up, front, right = torch.tensor([0.0, 0, 1]), torch.tensor([0.0, -1, 0]), torch.tensor([1.0, 0, 0])
    points = torch.stack([up, -up, front, -front, right, -right])  # centred, radius 1
    world = to_world(points, radius=1.0)
    torch.testing.assert_close(world[0], torch.tensor([0.0, 1, 0]))  # Shap-E up (+z) -> +y
    torch.testing.assert_close(world[2], torch.tensor([0.0, 0, 1]))  # Shap-E front (-y) -> +z, the front view
    torch.testing.assert_close(world[4], torch.tensor([1.0, 0, 0]))  # screen-right stays +x


@pytest.mark.parametrize(
    "config, model, message",
    [
        (dict(kind="shap_e", shap_e_model="/no/such/shap-e"), "sd15", "init.kind=sphere"),
        (dict(kind="mini_shape_prior"), "/weights/sd15", "init.kind=shap_e"),
    ],
)
def test_initialisers_that_cannot_run_fail_in_one_line(config, model, message):
    with pytest.raises(UserError) as err:
        check_initializer(InitConfig(**config), model)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_old_name_of_the_mini_initialiser_gets_a_hint():
    with pytest.raises(UserError, match="init.kind=mini_shape_prior"):
        InitConfig(kind="prior")


def test_a_folder_without_a_pipeline_index_is_refused_before_loading(tmp_path):
    (tmp_path / "shap-e").mkdir()
    with pytest.raises(UserError) as err:
        resolve_shap_e(str(tmp_path / "shap-e"))
    assert "init.shap_e_model=FOLDER" in str(err.value) and "\n" not in str(err.value)


def test_a_pipeline_folder_that_does_not_load_is_one_line(shap_e, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(shap_e / "model_index.json", broken)  # its components are missing
    with pytest.raises(UserError) as err:
        shap_e_mesh(broken, "a corgi", 2, 15.0, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert "could not be loaded as a ShapEPipeline" in str(err.value) and "\n" not in str(err.value)


def test_a_shap_e_that_decodes_no_surface_is_one_line(shap_e, tmp_path):
    pipeline = ShapEPipeline.from_pretrained(shap_e)
    with torch.no_grad():
        pipeline.shap_e_renderer.mlp.mlp[-1].bias[0] -= 100  # the signed distance is negative (outside) everywhere
    pipeline.save_pretrained(tmp_path / "empty")
    config = InitConfig(kind="shap_e", shap_e_model=str(tmp_path / "empty"), num_points=10, shap_e_steps=2)
    with pytest.raises(UserError) as err:
        initial_gaussians(config, "a corgi", 0, torch.Generator().manual_seed(0))
    assert "empty mesh" in str(err.value) and "init.kind=sphere" in str(err.value) and "\n" not in str(err.value)
