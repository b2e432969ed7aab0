"""The eye finder behind the Janus reading: it sees the world's eyes on fresh fronts, none from
behind, and neither a dark dot nor a highlight passes for an eye."""

from __future__ import annotations

import pytest
import torch

from tv3dg.priors.mini.classifier import blur
from tv3dg.priors.mini.eyes import eyes_seen
from tv3dg.priors.mini.registration import WorldAttributeReader
from tv3dg.priors.mini.world import HIDDEN_EMBLEM_PX, VISIBLE_EMBLEM_PX, random_objects, render_objects
from tv3dg.render.cameras import orbit_cameras


def test_it_sees_the_eyes_of_fresh_fronts_and_none_from_behind():
    """Measured on 600 objects: 91% of fronts, 0 of 600 backs. The bound on fronts leaves room for
    the sampling spread of 120 objects (binomial std about 2.6 points)."""
    generator = torch.Generator().manual_seed(11)
    n = 120
    objects = random_objects(n, generator)
    elevation = torch.rand(n, generator=generator) * 30
    front = render_objects(objects, orbit_cameras(elevation, torch.rand(n, generator=generator) * 60 - 30, 3.2, 40.0, 64))
    back = render_objects(objects, orbit_cameras(elevation, 180 + torch.rand(n, generator=generator) * 90 - 45, 3.2, 40.0, 64))
    assert (front.emblem_pixels() >= VISIBLE_EMBLEM_PX).all() and (back.emblem_pixels() < HIDDEN_EMBLEM_PX).all()
    assert eyes_seen(front.rgb).float().mean() >= 0.8
    assert not eyes_seen(back.rgb).any()


def _eye(image: torch.Tensor, x: int, y: int) -> None:
    """Paint an eye as the world renders one lit from the front: a light grey disc, a dark pupil."""
    _disc(image, x, y, 3.2, 0.67)
    _disc(image, x, y, 1.5, 0.04)


def _disc(image: torch.Tensor, x: int, y: int, radius: float, value: float) -> None:
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    image[:, ((xx - x) ** 2 + (yy - y) ** 2).float().sqrt() <= radius] = value


@pytest.mark.parametrize("marks, expected", [
    ("pair", True),  # two eyes, as drawn on a front
    ("eye", True),  # one eye (a smeared pair, or a turned head) is a front too
    ("dot", False),  # a dark pattern dot on the body
    ("highlight", False),  # a white disc with no pupil
    ("soft eye", True),  # an eye blurred as a splat draws it, paler and greyer than drawn
])
def test_an_eye_is_a_dark_pupil_ringed_by_eye_white(marks: str, expected: bool):
    image = torch.ones(1, 3, 64, 64)
    image[:, :, 10:54, 10:54] = torch.tensor([0.7, 0.1, 0.1])[:, None, None]  # a red body
    if marks in ("pair", "eye", "soft eye"):
        _eye(image[0], 27, 30)
    if marks == "pair":
        _eye(image[0], 37, 30)
    if marks == "dot":
        _disc(image[0], 30, 30, 1.5, 0.04)
    if marks == "highlight":
        _disc(image[0], 30, 30, 3.2, 0.67)
    if marks == "soft eye":
        image = 0.6 * blur(image) + 0.4 * image.mean(dim=(2, 3), keepdim=True)  # blurred, contrast halved
    assert bool(eyes_seen(image)) is expected


def test_it_refuses_views_of_another_size():
    with pytest.raises(ValueError, match="64-px"):
        eyes_seen(torch.ones(1, 3, 32, 32))


def test_the_janus_reading_of_generated_assets_uses_the_finder():
    """The mini model's attribute reader (behind metrics.json's janus) takes its eyes from the finder."""
    image = torch.ones(2, 3, 64, 64)
    image[:, :, 10:54, 10:54] = torch.tensor([0.1, 0.6, 0.2])[:, None, None]
    for x in (27, 37):
        _eye(image[0], x, 30)
    assert WorldAttributeReader().read_images(image)["emblem"] == ["visible", "hidden"]
