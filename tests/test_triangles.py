"""The triangle rasterizer used to bake textures and to check meshes against Gaussian renders."""

import math

import numpy as np
import torch
import trimesh

from tv3dg.render.cameras import orbit_cameras
from tv3dg.render.triangles import rasterize_triangles, render_mesh


def test_a_sphere_covers_its_analytic_silhouette_without_holes():
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.8)
    cameras = orbit_cameras(20.0, torch.tensor([0.0, 130.0]), 3.0, 40.0, 128)
    _, mask = render_mesh(
        torch.from_numpy(sphere.vertices).float(), torch.from_numpy(sphere.faces).long(), cameras, torch.ones(3),
        vertex_colors=torch.zeros(len(sphere.vertices), 3),
    )
    focal = float(cameras.fx[0])
    radius_px = focal * 0.8 / math.sqrt(3.0**2 - 0.8**2)  # the silhouette of a sphere seen from distance 3
    # The icosphere is inscribed (slightly smaller than the sphere); the pixel grid adds ~1/R noise.
    area = mask.sum(dim=(1, 2)).float()
    assert torch.allclose(area, torch.full_like(area, math.pi * radius_px**2), rtol=0.03)
    neighbours = torch.nn.functional.conv2d(mask.float()[:, None], torch.ones(1, 1, 3, 3), padding=1)[:, 0]
    assert int((~mask & (neighbours >= 7)).sum()) == 0  # no pinholes along shared edges


def test_the_nearest_triangle_wins_whatever_the_drawing_order():
    near = [[10.0, 10.0], [50.0, 10.0], [10.0, 50.0]]
    far = [[5.0, 5.0], [60.0, 5.0], [5.0, 60.0]]
    for order in ((near, far), (far, near)):
        corners = torch.tensor(order)
        depth = torch.tensor([[1.0] * 3, [2.0] * 3]) if order[0] is near else torch.tensor([[2.0] * 3, [1.0] * 3])
        frags = rasterize_triangles(corners, 64, 64, depth=depth)
        near_index = 0 if order[0] is near else 1
        assert int(frags.face[20, 20]) == near_index and abs(float(frags.depth[20, 20]) - 1.0) < 1e-5
        assert int(frags.face[7, 7]) == 1 - near_index  # only the far triangle covers this pixel
        assert int(frags.face[63, 63]) == -1


def test_a_textured_quad_facing_the_camera_shows_its_texture():
    # A quad filling the middle of a front view, its texture a left-right / top-bottom colour ramp.
    vertices = torch.tensor([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    ramp = torch.linspace(0, 1, 32)
    texture = torch.stack([ramp[None].expand(32, 32), ramp[:, None].expand(32, 32), torch.zeros(32, 32)], dim=-1)
    cameras = orbit_cameras(0.0, 0.0, 2.0, 40.0, 64)
    image, mask = render_mesh(vertices, faces, cameras, torch.ones(3), uv=uv, texture=texture)
    rows, cols = np.nonzero(mask[0].numpy())
    red = image[0, rows[0] + 2, cols.min() : cols.max() + 1, 0]
    assert torch.all(red[1:] >= red[:-1] - 1e-4) and red[-1] - red[0] > 0.8  # red grows left to right (u)
    green = image[0, rows.min() : rows.max() + 1, cols[0] + 2, 1]
    assert torch.all(green[1:] >= green[:-1] - 1e-4) and green[-1] - green[0] > 0.8  # row 0 of the texture is the top (v = 1)
