"""`init.kind=shap_e`: tiny random Shap-E pipelines saved and loaded back through `from_pretrained`,
the axis change into this project's convention, and the one-line errors of the initialisers."""

from __future__ import annotations

import pytest
import torch
from tiny_shap_e import make_tiny_shap_e, make_tiny_shap_e_img2img

from tv3dg.errors import UserError
from tv3dg.init.initializers import InitConfig, check_initializer, initial_gaussians
from tv3dg.init.shap_e import to_world

pytestmark = pytest.mark.slow  # Shap-E decodes a 128^3 grid: 10-30 s per mesh on a 2-core CPU


@pytest.fixture(scope="module")
def shap_e(tmp_path_factory):
    return make_tiny_shap_e(tmp_path_factory.mktemp("shap_e"))


def test_shap_e_gaussians_lie_on_the_decoded_surface_at_the_configured_size(shap_e):
    config = InitConfig(kind="shap_e", shap_e_model=str(shap_e), num_points=400, radius=0.5, shap_e_steps=2)
    check_initializer(config, "any/sd15-model")
    gaussians = initial_gaussians(config, "a corgi", 0, torch.Generator().manual_seed(0))
    assert gaussians.num_points == 400
    radius = gaussians.means.detach().norm(dim=1).max()
    assert abs(float(radius) - 0.5) < 1e-5  # farthest sample at init.radius
    colors = gaussians.sh_dc.detach()
    assert torch.isfinite(colors).all() and torch.isfinite(gaussians.log_scales).all()


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
