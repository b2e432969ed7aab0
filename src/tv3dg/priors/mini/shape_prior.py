"""The learned 3D shape prior: caption -> coarse coloured point cloud, for initialising Gaussians.

A small folding decoder maps points of a unit sphere, conditioned on the caption's parsed shape,
colour and pattern (each may be unknown), to surface points and albedos. It is trained with a
Chamfer loss against surface samples of the world's shapes (world units: objects lie inside the
unit sphere) and a colour loss against the albedo of the nearest true surface point. An
attribute the caption does not name yields the learned average; a small object is the regular
one scaled. It learns the body's colours only: the eyes are left to the diffusion prior, as a 3D
prior in the field gives a shape, not a front.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tv3dg.priors.mini.captions import parse_caption
from tv3dg.priors.mini.lr import cosine_lr
from tv3dg.priors.mini.module_io import load_module
from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS
from tv3dg.priors.mini.sdf import BOUND_RADIUS
from tv3dg.priors.mini.world import COLOUR_NAMES, PATTERNS, SHAPES, SMALL_SCALE, shape_sdf, surface_albedo

TRAIN_POINTS = 512
COUNTS = (len(SHAPES), len(COLOUR_NAMES), len(PATTERNS))


def sphere_seeds(count: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniform points on the unit sphere: the decoder folds them onto the object's surface."""
    return F.normalize(torch.randn(count, 3, generator=generator), dim=-1)


class ShapePrior(nn.Module):
    """A folding decoder: (sphere seed point, caption attributes) -> surface point and albedo.

    Attribute index len(names) means "not named in the caption". Any number of points can be
    drawn, since each seed is decoded independently.
    """

    def __init__(self, width: int = 128):
        super().__init__()
        self.counts = COUNTS
        self.shape_embed = nn.Embedding(COUNTS[0] + 1, width)
        self.colour_embed = nn.Embedding(COUNTS[1] + 1, width)
        self.pattern_embed = nn.Embedding(COUNTS[2] + 1, width)
        self.seed_in = nn.Linear(3, width)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 6))

    def forward(self, seeds: Tensor, shape: Tensor, colour: Tensor, pattern: Tensor) -> tuple[Tensor, Tensor]:
        """seeds [B, N, 3], attribute indices [B] -> xyz [B, N, 3] (world units), rgb [B, N, 3]."""
        cond = self.shape_embed(shape) + self.colour_embed(colour) + self.pattern_embed(pattern)
        out = self.mlp(self.seed_in(seeds) + cond.unsqueeze(1))
        return BOUND_RADIUS * torch.tanh(out[..., :3]), torch.sigmoid(out[..., 3:])

    @torch.no_grad()
    def sample(self, prompt: str, n_points: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(xyz [n, 3] in world units, rgb [n, 3] in [0, 1]) of the object `prompt` describes."""
        parsed = parse_caption(prompt)
        named = (parsed.shape, parsed.colour, parsed.pattern)
        idx = [count if i is None else i for i, count in zip(named, COUNTS)]
        xyz, rgb = self(sphere_seeds(n_points, generator).unsqueeze(0), *(torch.tensor([i]) for i in idx))
        return xyz[0] * (SMALL_SCALE if parsed.size == 1 else 1.0), rgb[0]


def surface_points(shape: int, count: int, generator: torch.Generator) -> Tensor:
    """About-uniform samples on a regular-size shape's surface: near-surface points projected along the SDF gradient."""
    kept = []
    total = 0
    while total < count:
        p = (torch.rand(count * 8, 3, generator=generator) * 2 - 1) * BOUND_RADIUS
        p = p[shape_sdf(shape, p).abs() < 0.04]
        for _ in range(3):
            p = p.detach().requires_grad_(True)
            d = shape_sdf(shape, p)
            (grad,) = torch.autograd.grad(d.sum(), p)
            p = p - d.unsqueeze(-1) * F.normalize(grad, dim=-1)
        kept.append(p.detach())
        total += p.shape[0]
    points = torch.cat(kept)
    return points[torch.randperm(points.shape[0], generator=generator)[:count]]


def shape_surfaces(count: int, generator: torch.Generator) -> Tensor:
    """[shapes, count, 3] surface samples of every regular-size shape (the training targets)."""
    return torch.stack([surface_points(s, count, generator) for s in range(len(SHAPES))])


def body_albedo(colour: Tensor, pattern: Tensor, points: Tensor) -> Tensor:
    """Albedo of surface points [B, N, 3] for per-object colour/pattern indices [B]."""
    b, n, _ = points.shape
    return surface_albedo(colour.repeat_interleave(n), pattern.repeat_interleave(n), points.reshape(-1, 3)).reshape(b, n, 3)


def chamfer(a: Tensor, b: Tensor) -> Tensor:
    """Symmetric mean nearest-neighbour distance between point sets [B, N, 3] and [B, M, 3]."""
    d = torch.cdist(a, b)
    return d.min(dim=2).values.mean(dim=1) + d.min(dim=1).values.mean(dim=1)


def load_shape_prior(path: Path | str = PACKAGE_WEIGHTS.shape_prior) -> ShapePrior:
    return load_module(ShapePrior(), path, "mini shape prior")


@dataclass(frozen=True)
class ShapePriorSchedule:
    steps: int
    lr: float
    batch: int
    unknown_prob: float  # how often an attribute is hidden, so that unnamed ones get a learned average


def shape_prior_train_step(
    model: ShapePrior, optimizer: torch.optim.Optimizer, schedule: ShapePriorSchedule, surfaces: Tensor,
) -> Callable[[int, torch.Generator], float]:
    """One optimisation step of the shape prior: Chamfer to a shape's surface samples
    `surfaces` [shapes, M, 3] plus the albedo of the nearest true point."""
    n_shapes, n_colours, n_patterns = model.counts

    def train_step(step: int, generator: torch.Generator) -> float:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(schedule.lr, step, schedule.steps)
        b = schedule.batch
        shape = torch.randint(n_shapes, (b,), generator=generator)
        colour = torch.randint(n_colours, (b,), generator=generator)
        pattern = torch.randint(n_patterns, (b,), generator=generator)
        unknown = torch.rand(b, 3, generator=generator) < schedule.unknown_prob
        inputs = [
            torch.where(unknown[:, 0], n_shapes, shape),
            torch.where(unknown[:, 1], n_colours, colour),
            torch.where(unknown[:, 2], n_patterns, pattern),
        ]
        target = surfaces[shape][:, torch.randint(surfaces.shape[1], (TRAIN_POINTS,), generator=generator)]
        xyz, rgb = model(sphere_seeds(b * TRAIN_POINTS, generator).reshape(b, TRAIN_POINTS, 3), *inputs)
        nearest = torch.cdist(xyz.detach(), target).argmin(dim=2)
        target_rgb = body_albedo(colour, pattern, torch.gather(target, 1, nearest.unsqueeze(-1).expand(-1, -1, 3)))
        loss = chamfer(xyz, target).mean() + F.mse_loss(rgb, target_rgb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return train_step
