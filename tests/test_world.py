"""The procedural world: determinism, geometry against analytic answers, camera convention, tokenizer."""

from __future__ import annotations

import math

import pytest
import torch

from tv3dg.priors.mini.architecture import MAX_LENGTH
from tv3dg.priors.mini.captions import vocabulary
from tv3dg.priors.mini.tokenizer import save_tokenizer
from tv3dg.priors.mini.world import (
    COLOUR_NAMES, COLOURS, PATTERNS, SECOND_COLOUR, SHAPES, WorldObject, any_cameras, random_objects, render_objects,
)
from tv3dg.render.cameras import orbit_cameras

SPHERE, CUBE, TORUS = SHAPES.index("sphere"), SHAPES.index("cube"), SHAPES.index("torus")
SPHERE_RADIUS, CUBE_HALF = 0.8, 0.52


def test_renders_are_deterministic_by_seed():
    def batch(seed: int):
        generator = torch.Generator().manual_seed(seed)
        objects = random_objects(6, generator)
        return objects, render_objects(objects, any_cameras(6, 32, generator)).rgb

    objects_a, images_a = batch(3)
    objects_b, images_b = batch(3)
    objects_c, images_c = batch(4)
    assert objects_a == objects_b and torch.equal(images_a, images_b)
    assert objects_a != objects_c and not torch.equal(images_a, images_c)


def test_sphere_depth_and_alpha_match_the_analytic_intersection():
    radius, fov, size = 3.0, 40.0, 32
    camera = orbit_cameras(20.0, 30.0, radius, fov, size)
    render = render_objects([WorldObject(SPHERE, 0, 0)], camera, supersample=1)
    # analytic ray/sphere intersection per pixel centre, as camera-frame z
    focal = float(camera.fx[0])
    j, i = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="xy")
    d = torch.stack([(j - size / 2) / focal, (i - size / 2) / focal, torch.ones_like(j)], dim=-1)
    # in the camera frame the sphere centre is at (0, 0, radius)
    a = (d * d).sum(-1)
    b = -2 * radius * d[..., 2]
    c = radius**2 - SPHERE_RADIUS**2
    disc = b * b - 4 * a * c
    hit = disc > 0
    z = (-b - disc.clamp(min=0).sqrt()) / (2 * a)  # camera z, since d has z = 1
    alpha = render.alpha[0, 0]
    depth = render.depth[0, 0]
    # pixels whose centre ray grazes the silhouette may go either way; elsewhere coverage is exact
    clear = (disc.abs() > 0.02)
    assert torch.equal(alpha[clear] > 0.5, hit[clear])
    assert torch.allclose(depth[hit & clear], z[hit & clear], atol=2e-3)
    assert float(depth[~hit & clear].abs().max()) == 0.0


def test_supersampled_coverage_equals_the_projected_disk_area():
    radius, fov, size = 3.2, 40.0, 32
    render = render_objects([WorldObject(SPHERE, 2, 0)], orbit_cameras(0.0, 0.0, radius, fov, size), supersample=4)
    focal = size / 2 / math.tan(math.radians(fov / 2))
    # a sphere projects to a disk of radius f * tan(asin(R / d))
    disk_radius = focal * math.tan(math.asin(SPHERE_RADIUS / radius))
    assert float(render.alpha.sum()) == pytest.approx(math.pi * disk_radius**2, rel=0.02)


def test_front_face_is_seen_at_azimuth_zero_and_the_right_face_at_ninety():
    radius = 3.0
    for azimuth, axis in ((0.0, 2), (90.0, 0), (180.0, 2)):
        camera = orbit_cameras(0.0, azimuth, radius, 40.0, 32)
        render = render_objects([WorldObject(CUBE, 0, 0)], camera, supersample=1)
        centre_depth = float(render.depth[0, 0, 16, 16])
        point = camera.centers[0] * (1 - centre_depth / radius)  # the centre ray runs to the origin
        expected = CUBE_HALF if azimuth < 180 else -CUBE_HALF
        assert float(point[axis]) == pytest.approx(expected, abs=0.01)


def test_torus_hole_faces_the_front():
    front = render_objects([WorldObject(TORUS, 0, 0)], orbit_cameras(0.0, 0.0, 3.0, 40.0, 32), supersample=1)
    side = render_objects([WorldObject(TORUS, 0, 0)], orbit_cameras(0.0, 90.0, 3.0, 40.0, 32), supersample=1)
    assert float(front.alpha[0, 0, 15:17, 15:17].max()) == 0.0  # looking through the hole
    assert float(side.alpha[0, 0, 15:17, 15:17].min()) == 1.0


@pytest.mark.parametrize("pattern", range(len(PATTERNS)))
def test_patterns_show_the_second_colour_only_when_patterned(pattern):
    """Seen from behind, where no eye (white and black) shows, only a pattern brings dark pixels."""
    render = render_objects([WorldObject(CUBE, COLOUR_NAMES.index("yellow"), pattern)], orbit_cameras(20.0, 150.0, 3.0, 40.0, 32), supersample=1)
    pixels = render.rgb[0].permute(1, 2, 0)[render.alpha[0, 0] == 1]
    # shading scales albedo by 0.42..1.14: the dark second colour stays below 0.21, lit yellow above 0.39
    dark = pixels.max(dim=-1).values < 1.5 * max(SECOND_COLOUR)
    fraction = float(dark.float().mean())
    if PATTERNS[pattern] == "plain":
        assert fraction == 0.0
    else:  # dots cover the least of the surface, wide stripes and checks about half
        assert 0.05 < fraction < 0.8, fraction


def test_background_is_white_and_colours_stay_in_range():
    generator = torch.Generator().manual_seed(0)
    render = render_objects(random_objects(4, generator), any_cameras(4, 32, generator))
    empty = render.alpha == 0
    assert torch.all(render.rgb.masked_select(empty.expand_as(render.rgb)) == 1.0)
    assert 0.0 <= float(render.rgb.min()) and float(render.rgb.max()) <= 1.0
    assert len(COLOURS) == len(COLOUR_NAMES)


def test_tokenizer_gives_each_world_word_one_token(tmp_path):
    tokenizer = save_tokenizer(tmp_path)
    assert (tmp_path / "vocab.json").is_file() and (tmp_path / "merges.txt").is_file()
    for word in [w for w in vocabulary() if w.isalpha()]:  # "3d": CLIP splits digits from letters
        ids = tokenizer(word)["input_ids"]
        assert len(ids) == 3, (word, ids)  # <bos> word <eos>
    unknown = tokenizer("a zebra", padding="max_length", truncation=True)["input_ids"]
    assert len(unknown) == tokenizer.model_max_length == MAX_LENGTH
