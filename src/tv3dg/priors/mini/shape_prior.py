"""The learned mini 3D prior: caption -> coarse coloured point cloud, for initialising Gaussians.

A small folding decoder maps points of a unit sphere, conditioned on the caption's parsed
attributes (each may be unknown), to surface points and albedos. It is trained with a Chamfer loss against surface samples of the world's shapes
(world units: objects lie inside the unit sphere) and a colour loss against the albedo of the
nearest true surface point. An attribute the caption does not name yields the learned average.
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
from tv3dg.priors.mini.module_io import load_module, save_module
from tv3dg.priors.mini.paths import MINI_SHAPE_PRIOR
from tv3dg.priors.mini.world import BOUND_RADIUS, COLOUR_NAMES, PATTERNS, SHAPES, shape_sdf, surface_albedo

TRAIN_POINTS = 512


def sphere_seeds(count: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniform points on the unit sphere: the decoder folds them onto the object's surface."""
    return torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)


class ShapePrior(nn.Module):
    """A folding decoder: (sphere seed point, caption attributes) -> surface point and albedo.

    Attribute index len(names) means "not named in the caption". Any number of points can be
    drawn, since each seed is decoded independently.
    """

    def __init__(self, width: int = 128, counts: tuple[int, int, int] = (len(SHAPES), len(COLOUR_NAMES), len(PATTERNS))):
        super().__init__()
        self.counts = counts
        self.shape_embed = nn.Embedding(counts[0] + 1, width)
        self.colour_embed = nn.Embedding(counts[1] + 1, width)
        self.pattern_embed = nn.Embedding(counts[2] + 1, width)
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
        shape, colour, pattern = parse_caption(prompt)
        idx = [len(SHAPES) if shape is None else shape, len(COLOUR_NAMES) if colour is None else colour, len(PATTERNS) if pattern is None else pattern]
        xyz, rgb = self(sphere_seeds(n_points, generator).unsqueeze(0), *(torch.tensor([i]) for i in idx))
        return xyz[0], rgb[0]


def surface_points(shape: int, count: int, generator: torch.Generator, sdf: Callable[[int, Tensor], Tensor] = shape_sdf) -> Tensor:
    """About-uniform samples on a shape's surface: near-surface points projected along the SDF gradient."""
    kept = []
    total = 0
    while total < count:
        p = (torch.rand(count * 8, 3, generator=generator) * 2 - 1) * BOUND_RADIUS
        p = p[sdf(shape, p).abs() < 0.04]
        for _ in range(3):
            p = p.detach().requires_grad_(True)
            d = sdf(shape, p)
            (grad,) = torch.autograd.grad(d.sum(), p)
            p = p - d.unsqueeze(-1) * torch.nn.functional.normalize(grad, dim=-1)
        kept.append(p.detach())
        total += p.shape[0]
    points = torch.cat(kept)
    return points[torch.randperm(points.shape[0], generator=generator)[:count]]


def chamfer(a: Tensor, b: Tensor) -> Tensor:
    """Symmetric mean nearest-neighbour distance between point sets [B, N, 3] and [B, M, 3]."""
    d = torch.cdist(a, b)
    return d.min(dim=2).values.mean(dim=1) + d.min(dim=1).values.mean(dim=1)


def save_shape_prior(model: ShapePrior, path: Path) -> None:
    save_module(model, path)


def load_shape_prior(path: Path | str = MINI_SHAPE_PRIOR) -> ShapePrior:
    return load_module(ShapePrior(), path, "mini shape prior")


def target_albedo(colour: Tensor, pattern: Tensor, points: Tensor) -> Tensor:
    """Albedo of surface points [B, N, 3] for per-object colour/pattern indices [B]."""
    b, n, _ = points.shape
    return surface_albedo(colour.repeat_interleave(n), pattern.repeat_interleave(n), points.reshape(-1, 3)).reshape(b, n, 3)


@dataclass(frozen=True)
class ShapePriorSchedule:
    steps: int
    lr: float
    batch: int
    unknown_prob: float  # how often an attribute is hidden, so that unnamed ones get a learned average


def shape_prior_train_step(
    model: ShapePrior, optimizer: torch.optim.Optimizer, schedule: ShapePriorSchedule, surfaces: Tensor,
    albedo: Callable[[Tensor, Tensor, Tensor], Tensor],
) -> Callable[[int, torch.Generator], float]:
    """One optimisation step of the shape prior: Chamfer to a shape's surface samples
    `surfaces` [shapes, M, 3] plus the colour of the nearest true point, `albedo(colour, pattern, points)`."""
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
        target_rgb = albedo(colour, pattern, torch.gather(target, 1, nearest.unsqueeze(-1).expand(-1, -1, 3)))
        loss = chamfer(xyz, target).mean() + F.mse_loss(rgb, target_rgb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return train_step
