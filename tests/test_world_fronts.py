"""The mini world: objects with a front, photo-like cameras, free captions, and the Janus/colour measures."""

from __future__ import annotations

import pytest
import torch

from tv3dg.eval.colour import read_colour
from tv3dg.eval.janus import JanusReading, back_views, multi_faced_share, read_janus
from tv3dg.priors.mini.captions import CaptionPlan, caption, parse_caption, vocabulary
from tv3dg.priors.mini.world import (
    _KEY_LIGHT, COLOUR_NAMES, HIDDEN_EMBLEM_PX, MATERIALS, PATTERNS, SHAPES, SIZES, VISIBLE_EMBLEM_PX, WorldObject, photo_cameras,
    random_objects, render_objects, shade,
)
from tv3dg.render.cameras import orbit_cameras, view_direction


def test_world_has_the_required_variety():
    assert len(SHAPES) >= 10 and len(COLOUR_NAMES) >= 10 and len(PATTERNS) >= 5
    assert {"dotted", "pinstriped"} <= set(PATTERNS) and MATERIALS == ("matte", "shiny")


@pytest.mark.parametrize("size", range(len(SIZES)))
def test_the_eyes_are_seen_from_the_front_and_hidden_from_behind(size: int):
    """Every shape shows its eyes at 0 deg azimuth and none beyond 135 deg, at the photo elevations;
    their mirror image on the back (where a second face would be drawn) the other way round."""
    objects = [WorldObject(shape, shape % len(COLOUR_NAMES), shape % len(PATTERNS), shape % 2, size) for shape in range(len(SHAPES))]
    n = len(objects)

    def pixels(coverage: torch.Tensor) -> torch.Tensor:
        return coverage.sum(dim=(1, 2, 3))

    for elevation in (0.0, 25.0):
        front = render_objects(objects, orbit_cameras(torch.full((n,), elevation), 0.0, 3.2, 40.0, 64))
        assert (front.emblem_pixels() >= VISIBLE_EMBLEM_PX).all(), front.emblem_pixels()
        assert (pixels(front.back_emblem) < HIDDEN_EMBLEM_PX).all(), pixels(front.back_emblem)
        for azimuth in (135.0, 180.0, -150.0):
            back = render_objects(objects, orbit_cameras(torch.full((n,), elevation), azimuth, 3.2, 40.0, 64))
            assert (back.emblem_pixels() < HIDDEN_EMBLEM_PX).all(), (azimuth, back.emblem_pixels())
            assert (pixels(back.back_emblem) >= VISIBLE_EMBLEM_PX).all(), (azimuth, pixels(back.back_emblem))


def test_a_shiny_surface_changes_with_the_camera_and_a_matte_one_does_not():
    """One lit surface point seen along the mirror direction of the key light and from elsewhere."""
    normal = torch.tensor([[0.0, 0.0, 1.0]])
    albedo = torch.tensor([[0.12, 0.25, 0.88]])
    mirror = torch.nn.functional.normalize(2 * (normal @ _KEY_LIGHT) * normal - _KEY_LIGHT, dim=-1)
    elsewhere = torch.nn.functional.normalize(torch.tensor([[-0.7, -0.2, 0.7]]), dim=-1)
    for shiny, moves in ((torch.tensor([False]), False), (torch.tensor([True]), True)):
        seen = shade(albedo, normal, mirror, shiny)
        other = shade(albedo, normal, elsewhere, shiny)
        assert bool((seen - other).abs().max() > 0.3) is moves
        if moves:
            assert (seen > other + 0.3).all()  # the highlight is white: every channel rises


def test_photo_cameras_favour_the_front_like_a_photo_collection():
    cameras = photo_cameras(20000, 8, torch.Generator().manual_seed(0))
    azimuth = torch.remainder(cameras.azimuth_deg + 180.0, 360.0) - 180.0
    assert (azimuth.abs() <= 60.0).float().mean() > 0.65
    assert (azimuth.abs() > 120.0).float().mean() <= 0.15
    elevation = cameras.elevation_deg
    assert ((elevation >= 0.0) & (elevation <= 30.0)).float().mean() > 0.75


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a small green striped cube on the ground", dict(shape="cube", colour="green", pattern="striped", size="small")),
        ("a 3d render of a shiny gray ball with thin stripes", dict(shape="sphere", colour="grey", pattern="pinstriped", material="shiny")),
        ("a photo of a violet donut with polka dots, back view", dict(shape="torus", colour="purple", pattern="dotted", view="back")),
        ("a front view of a big spotted brown pill", dict(shape="capsule", colour="brown", pattern="dotted", size="regular", view="front")),
        ("a chequered orange diamond seen from behind", dict(shape="octahedron", colour="orange", pattern="checkered", view="back")),
        ("a thin-striped yellow egg", dict(shape="egg", colour="yellow", pattern="pinstriped")),
    ],
)
def test_free_phrasings_are_read_in_full(text: str, expected: dict):
    parsed = parse_caption(text)
    names = {"shape": SHAPES, "colour": COLOUR_NAMES, "pattern": PATTERNS, "material": MATERIALS, "size": SIZES}
    for key, value in expected.items():
        got = getattr(parsed, key)
        assert (got if key == "view" else names[key][got]) == value, (text, key, got)
    assert set(__import__("re").findall(r"[a-z0-9]+", text.lower())) <= set(vocabulary())


def test_every_generated_caption_reads_back_as_its_object_and_view():
    """Whatever a caption names is the object's own attribute and the photo's own view; most name no view."""
    generator = torch.Generator().manual_seed(1)
    objects = random_objects(600, generator)
    cameras = photo_cameras(600, 8, generator)
    views = view_direction(cameras.elevation_deg, cameras.azimuth_deg)
    words = set(vocabulary())
    with_view = 0
    for obj, view in zip(objects, views):
        text = caption(obj, view, generator)
        parsed = parse_caption(text)
        assert parsed.shape == obj.shape, text
        for key in ("colour", "pattern", "material", "size"):
            value = getattr(parsed, key)
            assert value is None or value == getattr(obj, key), (text, key)
        assert parsed.view in (None, view), text
        with_view += parsed.view is not None
        assert set(__import__("re").findall(r"[a-z0-9]+", text)) <= words, text
    assert 0.15 < with_view / len(objects) < 0.45


def test_a_plan_can_name_every_view_but_the_front():
    """prior_eyes names every side, back and overhead view, and fronts at the photo rate, so that a
    caption without a view word is a front."""
    generator = torch.Generator().manual_seed(2)
    plan = CaptionPlan(view_prob=0.3, other_view_prob=1.0)
    obj = WorldObject(1, 0, 1, 0, 0)
    for view in ("side", "back", "overhead"):
        assert all(parse_caption(caption(obj, view, generator, plan)).view == view for _ in range(50))
    fronts = [parse_caption(caption(obj, "front", generator, plan)).view for _ in range(400)]
    assert set(fronts) == {None, "front"} and 0.2 < fronts.count("front") / len(fronts) < 0.4


def test_a_plan_can_name_wrong_views_at_its_error_rate():
    """Careless captions: a named view is another one at the plan's error rate, any of the other three."""
    generator = torch.Generator().manual_seed(3)
    plan = CaptionPlan(view_prob=1.0, view_error_prob=0.4)
    obj = WorldObject(2, 1, 0, 1, 0)
    named = [parse_caption(caption(obj, "back", generator, plan)).view for _ in range(600)]
    assert None not in named
    wrong = [v for v in named if v != "back"]
    assert 0.33 < len(wrong) / len(named) < 0.47  # 0.4 within about 3 standard errors (0.02)
    assert set(wrong) == {"front", "side", "overhead"}


def test_back_views_wrap_around_and_start_beyond_120_degrees():
    azimuth = torch.tensor([0.0, 119.0, 121.0, 180.0, -150.0, 230.0, 300.0, -90.0])
    assert back_views(azimuth).tolist() == [False, False, True, True, True, True, False, False]


def test_janus_rate_counts_fronts_seen_from_behind():
    azimuth = torch.arange(8) * 45.0  # back views: 135, 180, 225
    two_faced = read_janus([True, True, False, True, True, False, False, True], azimuth)
    assert (two_faced.back_views, two_faced.fronts_from_behind) == (3, 2)
    assert two_faced.janus_rate == pytest.approx(2 / 3) and two_faced.multi_faced
    one_faced = read_janus([True, True, False, False, False, False, False, True], azimuth)
    assert one_faced.janus_rate == 0.0 and not one_faced.multi_faced
    assert multi_faced_share([two_faced, one_faced, JanusReading(3, 1)]) == pytest.approx(1 / 3)


def test_colour_reading_is_zero_for_the_truth_and_signs_oversaturation():
    """A render of the true object reads 0; pushing its colours away from grey reads as excess saturation."""
    objects = [WorldObject(1, COLOUR_NAMES.index("brown"), 0)] * 4
    render = render_objects(objects, orbit_cameras(15.0, torch.arange(4) * 90.0, 3.2, 40.0, 64))
    same = read_colour(render.rgb, render.alpha, render.rgb, render.alpha)
    assert same.colour_error == 0.0 and same.saturation_excess == 0.0
    grey = render.rgb.mean(dim=1, keepdim=True)
    vivid = (grey + 1.8 * (render.rgb - grey)).clamp(0, 1)
    washed = grey + 0.3 * (render.rgb - grey)
    assert read_colour(vivid, render.alpha, render.rgb, render.alpha).saturation_excess > 0.1
    washed_reading = read_colour(washed, render.alpha, render.rgb, render.alpha)
    assert washed_reading.saturation_excess < -0.1 and washed_reading.colour_error > 0.05
