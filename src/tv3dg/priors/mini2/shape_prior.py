"""World 2's shape prior: caption -> coarse coloured point cloud, for initialising Gaussians.

The folding decoder of world 1 (`tv3dg.priors.mini.shape_prior`) over world 2's shapes, colours
and patterns; a small object is the regular one scaled. It learns the body's colours only: the
eyes are left to the diffusion prior, as a 3D prior in the field gives a shape, not a front.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tv3dg.priors.mini.shape_prior import ShapePrior as FoldingDecoder
from tv3dg.priors.mini.shape_prior import sphere_seeds, surface_points
from tv3dg.priors.mini2.captions import parse_caption
from tv3dg.priors.mini2.world import COLOUR_NAMES, PATTERNS, SHAPES, SMALL_SCALE, shape_sdf, surface_albedo

COUNTS = (len(SHAPES), len(COLOUR_NAMES), len(PATTERNS))


class ShapePrior(FoldingDecoder):
    def __init__(self, width: int = 128):
        super().__init__(width, COUNTS)

    @torch.no_grad()
    def sample(self, prompt: str, n_points: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(xyz [n, 3] in world units, rgb [n, 3] in [0, 1]) of the object `prompt` describes."""
        parsed = parse_caption(prompt)
        named = (parsed.shape, parsed.colour, parsed.pattern)
        idx = [count if i is None else i for i, count in zip(named, COUNTS)]
        xyz, rgb = self(sphere_seeds(n_points, generator).unsqueeze(0), *(torch.tensor([i]) for i in idx))
        return xyz[0] * (SMALL_SCALE if parsed.size == 1 else 1.0), rgb[0]


def shape_surfaces(count: int, generator: torch.Generator) -> Tensor:
    """[shapes, count, 3] surface samples of every regular-size shape (the training targets)."""
    return torch.stack([surface_points(s, count, generator, sdf=shape_sdf) for s in range(len(SHAPES))])


def body_albedo(colour: Tensor, pattern: Tensor, points: Tensor) -> Tensor:
    """Albedo of surface points [B, N, 3] for per-object colour/pattern indices [B]."""
    b, n, _ = points.shape
    return surface_albedo(colour.repeat_interleave(n), pattern.repeat_interleave(n), points.reshape(-1, 3)).reshape(b, n, 3)
