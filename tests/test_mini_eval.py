"""The model card's camera check: it finds the requested view among its candidates."""

from __future__ import annotations

import torch

from tv3dg.priors.mini.evaluate import CHECK_FOV, CHECK_RADIUS, camera_matches, candidate_views
from tv3dg.priors.mini.world import SHAPES, WorldObject, render_objects
from tv3dg.render.cameras import orbit_cameras

TORUS = WorldObject(SHAPES.index("torus"), 3, 2)


def _render(elevation: float, azimuth: float) -> torch.Tensor:
    return render_objects([TORUS], orbit_cameras(elevation, azimuth, CHECK_RADIUS, CHECK_FOV, 32)).rgb[0]


def test_a_render_at_the_requested_camera_is_matched():
    candidates, elevations = candidate_views(TORUS, 25.0, 30.0)
    assert camera_matches(_render(25.0, 30.0), candidates, elevations, 25.0) == (True, True, True)


def test_a_render_from_elsewhere_is_not_matched():
    candidates, elevations = candidate_views(TORUS, 25.0, 30.0)
    assert camera_matches(_render(25.0, 120.0), candidates, elevations, 25.0) == (False, False, True)
    assert camera_matches(_render(50.0, 30.0), candidates, elevations, 25.0) == (False, True, False)
