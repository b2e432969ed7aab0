"""A fixed pool of world renders for training, and visual-prompt partners for style alignment.

Rendering the pool once (a minute or two) is cheaper than rendering every batch; the pool is
stored as safetensors in the run folder and is a pure function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from tv3dg.atomic import atomic_path
from tv3dg.priors.mini.world import WorldObject, random_cameras, random_objects, render_objects


@dataclass
class RenderPool:
    images: Tensor  # [N, 3, H, W] uint8
    attributes: Tensor  # [N, 3] long: shape, colour, pattern
    elevation_deg: Tensor  # [N]
    azimuth_deg: Tensor  # [N]

    def __len__(self) -> int:
        return self.images.shape[0]

    def float_images(self, index: Tensor) -> Tensor:
        return self.images[index].float() / 255.0

    def objects(self, index: Tensor) -> list[WorldObject]:
        return [WorldObject(*row) for row in self.attributes[index].tolist()]


def render_pool(count: int, size: int, seed: int, chunk: int = 256) -> RenderPool:
    """`count` random objects at random world cameras (deterministic in `seed`)."""
    generator = torch.Generator().manual_seed(seed)
    images, attrs, elev, azim = [], [], [], []
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        objects = random_objects(n, generator)
        cameras = random_cameras(n, size, generator)
        render = render_objects(objects, cameras)
        images.append((render.rgb * 255).round().to(torch.uint8))
        attrs.append(torch.tensor([[o.shape, o.colour, o.pattern] for o in objects]))
        elev.append(cameras.elevation_deg)
        azim.append(cameras.azimuth_deg)
    return RenderPool(torch.cat(images), torch.cat(attrs), torch.cat(elev), torch.cat(azim))


def save_pool(pool: RenderPool, path: Path) -> None:
    with atomic_path(path) as tmp:
        save_file(
            {k: v.contiguous() for k, v in vars(pool).items()},
            str(tmp),
        )


def load_pool(path: Path) -> RenderPool:
    data = load_file(str(path))
    return RenderPool(data["images"], data["attributes"], data["elevation_deg"], data["azimuth_deg"])


class AppearancePartners:
    """For each pool image, other images with the same colour and pattern (style-alignment pairs)."""

    def __init__(self, pool: RenderPool):
        """`pool.attributes` columns 0-2 are shape, colour and pattern (any world's pool)."""
        self.pool = pool
        colour_pattern = pool.attributes[:, 1:3]
        kinds, self.appearance = torch.unique(colour_pattern, dim=0, return_inverse=True)
        self.groups = [torch.nonzero(self.appearance == a).squeeze(-1) for a in range(len(kinds))]

    def sample(self, index: Tensor, same_shape_prob: float, generator: torch.Generator) -> Tensor:
        """A partner per index: same colour+pattern; a different shape unless drawn otherwise."""
        partners = torch.empty_like(index)
        want_same = torch.rand(len(index), generator=generator) < same_shape_prob
        for i, (idx, same) in enumerate(zip(index.tolist(), want_same.tolist())):
            group = self.groups[int(self.appearance[idx])]
            shapes = self.pool.attributes[group, 0]
            target_shape = self.pool.attributes[idx, 0]
            candidates = group[shapes == target_shape] if same else group[shapes != target_shape]
            if len(candidates) == 0:
                candidates = group
            partners[i] = candidates[torch.randint(len(candidates), (1,), generator=generator)]
        return partners

