"""The eye finder behind the Janus reading: it sees the world's eyes on fresh fronts, none from
behind, and only a level pair counts as a face."""

from __future__ import annotations

import pytest
import torch

from tv3dg.priors.mini.eyes import eyes_seen
from tv3dg.priors.mini.registration import WorldAttributeReader
from tv3dg.priors.mini.world import HIDDEN_EMBLEM_PX, VISIBLE_EMBLEM_PX, random_objects, render_objects
from tv3dg.render.cameras import orbit_cameras


def test_it_sees_the_eyes_of_fresh_fronts_and_none_from_behind():
    """Measured on 300 objects: 88% of fronts, 0 of 300 backs. The bound on fronts leaves room for
    the sampling spread of 120 objects (binomial std about 3 points)."""
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
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    distance = ((xx - x) ** 2 + (yy - y) ** 2).float().sqrt()
    image[:, distance <= 3.2] = 0.67
    image[:, distance <= 1.5] = 0.04


@pytest.mark.parametrize("eyes, expected", [
    ([(27, 30), (37, 30)], True),  # a level pair at a regular object's spacing
    ([(29, 30), (36, 31)], True),  # a small object's spacing, a pixel off level
    ([(27, 30)], False),  # one eye is not a face
    ([(12, 30), (50, 30)], False),  # too far apart
    ([(30, 20), (34, 40)], False),  # one above the other
])
def test_only_a_level_pair_of_eyes_counts(eyes, expected):
    image = torch.ones(1, 3, 64, 64)
    image[:, :, 10:54, 10:54] = torch.tensor([0.7, 0.1, 0.1])[:, None, None]  # a red body
    for x, y in eyes:
        _eye(image[0], x, y)
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
