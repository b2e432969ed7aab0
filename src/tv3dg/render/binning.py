"""Tile binning: which 2D Gaussians touch which square tile of the image, nearest first.

Every visible Gaussian is listed once per tile its truncated footprint box overlaps. The list is
sorted by (camera, tile, depth), so each tile owns a contiguous, front-to-back run of it.
Nothing here is differentiable: it only decides which pairs the compositor evaluates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TileBins:
    """Tiles of `tile_size`^2 pixels over B images of `tiles_y` x `tiles_x` tiles, flattened."""

    gaussian_ids: Tensor  # [I] int64 index into the flattened [B*N] Gaussians, sorted by (tile, depth)
    tile_starts: Tensor  # [num_tiles] int64 first entry of each tile in gaussian_ids
    tile_counts: Tensor  # [num_tiles] int64 entries per tile
    tile_size: int
    tiles_x: int
    tiles_y: int

    @property
    def num_tiles(self) -> int:
        return self.tile_counts.shape[0]


@torch.no_grad()
def bin_gaussians(
    means2d: Tensor, extents: Tensor, depths: Tensor, visible: Tensor, width: int, height: int, tile_size: int
) -> TileBins:
    """Bin the [B, N] projected Gaussians into tiles (see the module docstring)."""
    batch, n = depths.shape
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    device = means2d.device
    flat_ids = torch.nonzero(visible.reshape(-1), as_tuple=True)[0]
    centre = means2d.detach().reshape(-1, 2)[flat_ids]
    half = extents.reshape(-1, 2)[flat_ids]
    lo = torch.floor((centre - half) / tile_size).long()
    hi = torch.floor((centre + half) / tile_size).long()
    x0, x1 = lo[:, 0].clamp(0, tiles_x - 1), hi[:, 0].clamp(0, tiles_x - 1)
    y0, y1 = lo[:, 1].clamp(0, tiles_y - 1), hi[:, 1].clamp(0, tiles_y - 1)
    span_x = x1 - x0 + 1
    counts = span_x * (y1 - y0 + 1)
    total = int(counts.sum())

    owner = torch.repeat_interleave(torch.arange(flat_ids.numel(), device=device), counts, output_size=total)
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(total, device=device) - first[owner]
    tile_x = x0[owner] + local % span_x[owner]
    tile_y = y0[owner] + torch.div(local, span_x[owner], rounding_mode="floor")
    camera = torch.div(flat_ids[owner], n, rounding_mode="floor")
    tile = (camera * tiles_y + tile_y) * tiles_x + tile_x

    # One sort on (tile, depth rank) packed into an int64 key.
    depth_rank = torch.empty_like(flat_ids)
    depth_rank[torch.argsort(depths.detach().reshape(-1)[flat_ids])] = torch.arange(flat_ids.numel(), device=device)
    order = torch.argsort(tile * max(flat_ids.numel(), 1) + depth_rank[owner])

    num_tiles = batch * tiles_y * tiles_x
    tile_counts = torch.bincount(tile, minlength=num_tiles)
    return TileBins(
        gaussian_ids=flat_ids[owner[order]],
        tile_starts=torch.cumsum(tile_counts, 0) - tile_counts,
        tile_counts=tile_counts,
        tile_size=tile_size,
        tiles_x=tiles_x,
        tiles_y=tiles_y,
    )
