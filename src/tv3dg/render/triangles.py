"""A small z-buffer rasterizer of triangles in pure torch (CPU, no OpenGL or display).

It serves two jobs: baking a mesh texture (rasterizing triangles in UV space finds the surface
point behind every texel; rasterizing them in a camera gives the depth that decides which
texels a view sees) and checking an exported mesh against the Gaussians it came from (render
both from the same cameras). Same camera convention as the Gaussian rasterizer
(`tv3dg.render.cameras`): pixel (i, j) has its centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tv3dg.render.cameras import Cameras


@dataclass
class Fragments:
    """What covers each pixel: the nearest face (-1: none), its barycentrics and depth."""

    face: Tensor  # [H, W] long
    bary: Tensor  # [H, W, 3] perspective-correct when depths were given
    depth: Tensor  # [H, W], inf where no face

    @property
    def mask(self) -> Tensor:
        return self.face >= 0


def rasterize_triangles(
    corners: Tensor, height: int, width: int, depth: Tensor | None = None, budget: int = 1 << 22
) -> Fragments:
    """Rasterize triangles with pixel-space `corners` [F, 3, 2] (x right, y down).

    `depth` [F, 3] (camera z, positive in front) enables the z-test and perspective-correct
    barycentrics; without it (UV space, where charts do not overlap) any covering face wins.
    Faces are processed in groups of similar bounding-box size, `budget` candidate pixels at a time.
    """
    corners = corners.float()
    lo = torch.ceil(corners.min(dim=1).values - 0.5).clamp_min(0).long()
    hi = torch.floor(corners.max(dim=1).values - 0.5).long()
    hi = torch.minimum(hi, torch.tensor([width - 1, height - 1]))
    size = (hi - lo + 1).clamp_min(0)
    area = size[:, 0] * size[:, 1]
    order = torch.argsort(area)
    bucket = torch.ceil(torch.log2(area[order].clamp_min(1).float())).long()
    chunks: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
    for b in torch.unique(bucket[area[order] > 0]).tolist():
        faces_b = order[(bucket == b) & (area[order] > 0)]
        step = max(1, budget // (1 << b))
        for start in range(0, faces_b.numel(), step):
            chunks.append(_cover(faces_b[start : start + step], corners, depth, lo, size, width))
    if not chunks:
        return Fragments(
            torch.full((height, width), -1, dtype=torch.long), torch.zeros(height, width, 3),
            torch.full((height, width), float("inf")),
        )
    pixel, face, bary, z = (torch.cat(parts) for parts in zip(*chunks))
    zbuffer = torch.full((height * width,), float("inf")).scatter_reduce(0, pixel, z, reduce="amin")
    nearest = z <= zbuffer[pixel]
    winner = torch.full((height * width,), -1, dtype=torch.long)
    winner[pixel[nearest]] = torch.nonzero(nearest)[:, 0]  # on ties any one candidate, used for all fields
    hit = winner >= 0
    out_face = torch.full((height * width,), -1, dtype=torch.long)
    out_bary = torch.zeros(height * width, 3)
    out_face[hit] = face[winner[hit]]
    out_bary[hit] = bary[winner[hit]]
    return Fragments(out_face.reshape(height, width), out_bary.reshape(height, width, 3), zbuffer.reshape(height, width))


def _cover(
    faces: Tensor, corners: Tensor, depth: Tensor | None, lo: Tensor, size: Tensor, width: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pixels inside `faces`: flat pixel index, face, barycentrics and depth of each."""
    k = torch.arange(int((size[faces, 0] * size[faces, 1]).max()))
    w = size[faces, 0:1]
    px = lo[faces, 0:1] + k % w
    py = lo[faces, 1:2] + k // w
    valid = k[None] < (size[faces, 0] * size[faces, 1])[:, None]
    a, b, c = (corners[faces, i][:, None, :] for i in range(3))
    p = torch.stack([px + 0.5, py + 0.5], dim=-1)

    def cross(u: Tensor, v: Tensor) -> Tensor:
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    denom = cross(b - a, c - a)
    bary = torch.stack([cross(b - p, c - p), cross(c - p, a - p), cross(a - p, b - p)], dim=-1) / denom[..., None]
    inside = valid & (bary >= -1e-6).all(dim=-1) & (denom.abs() > 1e-12)
    sel = torch.nonzero(inside, as_tuple=True)
    bary = bary[sel]
    face = faces[sel[0]]
    if depth is None:
        z = torch.zeros(face.shape[0])
    else:
        inv = bary / depth[face]  # perspective-correct: interpolate 1/z linearly in screen space
        z = 1.0 / inv.sum(dim=-1)
        bary = inv * z[:, None]
    return py[sel] * width + px[sel], face, bary, z


def project(points: Tensor, cameras: Cameras) -> tuple[Tensor, Tensor]:
    """World points [N, 3] -> pixel positions [B, N, 2] and camera depths [B, N]."""
    rot = cameras.world_to_cam[:, :3, :3]
    cam = points[None] @ rot.transpose(1, 2) + cameras.world_to_cam[:, None, :3, 3]
    z = cam[..., 2]
    safe = z.clamp_min(1e-6)
    u = cameras.fx[:, None] * cam[..., 0] / safe + cameras.cx[:, None]
    v = cameras.fy[:, None] * cam[..., 1] / safe + cameras.cy[:, None]
    return torch.stack([u, v], dim=-1), z


def sample_texture(texture: Tensor, uv: Tensor) -> Tensor:
    """Bilinear lookup of `texture` [H, W, 3] (row 0 at v = 1, OBJ/trimesh convention) at `uv` [..., 2]."""
    grid = torch.stack([uv[..., 0] * 2 - 1, (1 - uv[..., 1]) * 2 - 1], dim=-1).reshape(1, -1, 1, 2)
    out = torch.nn.functional.grid_sample(
        texture.permute(2, 0, 1)[None].float(), grid.float(), mode="bilinear", padding_mode="border", align_corners=False
    )
    return out[0, :, :, 0].T.reshape(*uv.shape[:-1], texture.shape[-1])


def render_mesh(
    vertices: Tensor,
    faces: Tensor,
    cameras: Cameras,
    background: Tensor,
    uv: Tensor | None = None,
    texture: Tensor | None = None,
    vertex_colors: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Unlit renders [B, H, W, 3] and coverage masks [B, H, W] of a textured (uv [V, 2] + texture
    [H, W, 3]) or vertex-coloured (vertex_colors [V, 3]) mesh, colours in [0, 1]."""
    if (texture is None) == (vertex_colors is None):
        raise ValueError("render_mesh needs either uv + texture or vertex_colors")
    pixels, z = project(vertices.float(), cameras)
    images, masks = [], []
    for i in range(len(cameras)):
        front = (z[i][faces] > 1e-4).all(dim=-1)  # drop faces crossing the camera plane
        kept = faces[front]
        frags = rasterize_triangles(pixels[i][kept], cameras.height, cameras.width, depth=z[i][kept])
        image = background.reshape(1, 1, 3).expand(cameras.height, cameras.width, 3).clone()
        hit = frags.mask
        corner_ids = kept[frags.face[hit]]  # [P, 3]
        weights = frags.bary[hit][..., None]
        if texture is not None and uv is not None:
            image[hit] = sample_texture(texture, (uv[corner_ids] * weights).sum(dim=1))
        elif vertex_colors is not None:
            image[hit] = (vertex_colors[corner_ids].float() * weights).sum(dim=1)
        images.append(image)
        masks.append(hit)
    return torch.stack(images), torch.stack(masks)
