"""The render pools of the mini world: photos for the prior, views from everywhere for the classifier.

The prior learns from a photo-like pool (cameras biased to the front, `photo_cameras`); the
measuring classifier from a second pool whose cameras cover the orbit evenly, so that it reads
back views as well as front ones. Each pool is a pure function of its seed, rendered once per
training run and kept in the run folder (a few hundred MB: too large to ship or commit).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file
from torch import Tensor

from tv3dg.atomic import atomic_path
from tv3dg.errors import UserError
from tv3dg.priors.mini.architecture import VAE_FACTOR
from tv3dg.render.cameras import Cameras
from tv3dg.priors.mini.world import WorldObject, random_objects, render_objects


@dataclass
class RenderPool:
    images: Tensor  # [N, 3, H, W] uint8
    attributes: Tensor  # [N, 5] long: shape, colour, pattern, material, size
    emblem_px: Tensor  # [N] output pixels covered by the eyes
    emblem_mask: Tensor  # [N, 1, H/VAE_FACTOR, W/VAE_FACTOR] uint8: the eyes' coverage of each latent cell, 255 = full
    back_emblem_mask: Tensor  # the same for the eyes mirrored onto the back, where a second face would be drawn
    elevation_deg: Tensor  # [N]
    azimuth_deg: Tensor  # [N]

    def __len__(self) -> int:
        return self.images.shape[0]

    def float_images(self, index: Tensor) -> Tensor:
        return self.images[index].float() / 255.0

    def objects(self, index: Tensor) -> list[WorldObject]:
        return [WorldObject(*row) for row in self.attributes[index].tolist()]


CameraSampler = Callable[[int, int, torch.Generator], Cameras]


def latent_cell_cover(coverage: Tensor) -> Tensor:
    """[B, 1, H/VAE_FACTOR, W/VAE_FACTOR] uint8: a pixel coverage map's mean over each latent cell, 255 = full."""
    return (F.avg_pool2d(coverage, VAE_FACTOR) * 255).round().to(torch.uint8)


def render_pool(count: int, size: int, seed: int, cameras: CameraSampler, chunk: int = 256,
                progress: Callable[[int], None] | None = None) -> RenderPool:
    """`count` random objects at cameras drawn by `cameras` (deterministic in `seed`)."""
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[Tensor]] = {k: [] for k in ("images", "attributes", "emblem_px", "emblem_mask", "back_emblem_mask",
                                                 "elevation_deg", "azimuth_deg")}
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        objects = random_objects(n, generator)
        views = cameras(n, size, generator)
        render = render_objects(objects, views)
        parts["images"].append((render.rgb * 255).round().to(torch.uint8))
        parts["attributes"].append(torch.tensor([o.as_row() for o in objects]))
        parts["emblem_px"].append(render.emblem_pixels())
        parts["emblem_mask"].append(latent_cell_cover(render.emblem))
        parts["back_emblem_mask"].append(latent_cell_cover(render.back_emblem))
        parts["elevation_deg"].append(views.elevation_deg)
        parts["azimuth_deg"].append(views.azimuth_deg)
        if progress is not None:
            progress(start + n)
    return RenderPool(**{k: torch.cat(v) for k, v in parts.items()})


@torch.no_grad()
def pool_latent_means(vae: AutoencoderKL, pool: RenderPool, chunk: int = 512) -> Tensor:
    """[N, C, h, w] the VAE's latent means of every pool image (unscaled), a chunk at a time."""
    return torch.cat([vae.encode(pool.float_images(torch.arange(i, min(i + chunk, len(pool)))) * 2 - 1).latent_dist.mean
                      for i in range(0, len(pool), chunk)])


def save_pool(pool: RenderPool, path: Path) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in vars(pool).items()}, str(tmp))


def load_pool(path: Path) -> RenderPool:
    tensors = load_file(str(path))
    missing = [f.name for f in fields(RenderPool) if f.name not in tensors]
    if missing:
        raise UserError(f"'{path}' was rendered by an older tv3dg (it lacks {missing}); delete it and run the stage again")
    return RenderPool(**tensors)


class AppearancePartners:
    """For each pool image, other images with the same colour and pattern (style-alignment pairs)."""

    def __init__(self, pool: RenderPool):
        """`pool.attributes` columns 0-2 are shape, colour and pattern."""
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
