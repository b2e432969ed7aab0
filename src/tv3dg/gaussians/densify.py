"""Adaptive density control as a strategy object: clone, split, prune and reset opacity.

Between densification steps the strategy accumulates, per Gaussian, the norm of the gradient of
its projected centre (in NDC units, times the number of cameras so a batch-mean loss counts like
one camera) and its largest on-screen radius as a fraction of the image (radius in pixels over
the longer image side, as gsplat measures it, so a threshold means the same at 32 and 512 px).
Every `interval` steps in [start_step, stop_step):
- Gaussians whose mean gradient exceeds `grad_threshold` are under-reconstructed: small ones
  (max scale <= clone_max_scale * scene_extent) are cloned, large ones split into `split_count`
  children sampled from the parent Gaussian with scales divided by `split_shrink`;
- Gaussians with opacity under `prune_min_opacity` are removed, and once `size_prune_start_step`
  is passed, also those larger than `prune_max_scale * scene_extent` in the world or
  `prune_max_screen_fraction` of the image on screen.
Every `opacity_reset_interval` steps opacities are clamped down to `opacity_reset_value`, which
lets the optimiser prune what it does not need. The optimiser state follows every change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from tv3dg.gaussians.model import Gaussians, quaternion_to_matrix
from tv3dg.gaussians.surgery import append_points, keep_points, reset_parameter


@dataclass
class DensifyConfig:
    """Adaptive density control (clone, split, prune, opacity reset) as in 3DGS."""

    start_step: int = 500
    """First step that densifies."""
    stop_step: int = 15000
    """Last step that densifies."""
    interval: int = 100
    """Densify every this many steps."""
    grad_threshold: float = 2e-4
    """Mean screen-space gradient of a Gaussian's centre above which it is cloned or split."""
    scene_extent: float = 1.0
    """World size the scale thresholds are relative to."""
    clone_max_scale: float = 0.01
    """Times `scene_extent`: a Gaussian at or below this scale is cloned, above it split."""
    split_count: int = 2
    """Gaussians a split makes (at least 2)."""
    split_shrink: float = 1.6
    """Factor the split Gaussians' scales are divided by."""
    prune_min_opacity: float = 0.005
    """Gaussians fainter than this are pruned."""
    size_prune_start_step: int = 3000
    """First step that prunes Gaussians for their size."""
    prune_max_scale: float = 0.1
    """Times `scene_extent`: Gaussians larger than this are pruned; 0 disables."""
    prune_max_screen_fraction: float = 0.15
    """On-screen radius over the longer image side above which a Gaussian is pruned (gsplat's default); 0 disables."""
    opacity_reset_interval: int = 3000
    """Reset every opacity to `opacity_reset_value` every this many steps; 0 disables."""
    opacity_reset_value: float = 0.01
    """The opacity a reset sets."""
    max_points: int = 0
    """Cap on the number of Gaussians; 0: no cap."""


@dataclass
class ScreenStats:
    """What densification reads off one (batched) render, so it needs no renderer types.

    `means2d_grad` [B, N, 2] is dL/d(projected centre in pixels), None before `backward()`;
    `radii` [B, N] the on-screen radii in pixels; `visible` [B, N] which Gaussians were drawn.
    """

    means2d_grad: Tensor | None
    radii: Tensor
    visible: Tensor
    width: int
    height: int


@dataclass
class DensifyReport:
    """What one step of the strategy did."""

    cloned: int = 0
    split: int = 0
    pruned: int = 0
    opacity_reset: bool = False
    num_points: int = 0

    def counts(self) -> dict[str, int]:
        """The changes as counts that add up over a run (for metrics.json)."""
        return {"cloned": self.cloned, "split": self.split, "pruned": self.pruned, "opacity_resets": int(self.opacity_reset)}


class DensifyStrategy:
    """Call `step_post_backward` once per optimisation step, after `loss.backward()`."""

    def __init__(self, config: DensifyConfig, generator: torch.Generator | None = None) -> None:
        """`generator` (a CPU generator) drives the split positions, so runs repeat exactly from a seed."""
        if config.split_count < 2:
            raise ValueError("densify.split_count must be at least 2")
        self.config = config
        self.generator = generator
        self.grad_sum: Tensor | None = None
        self.grad_count: Tensor | None = None
        self.max_screen_fraction: Tensor | None = None

    def step_post_backward(
        self, gaussians: Gaussians, optimizer: torch.optim.Optimizer, stats: ScreenStats, step: int
    ) -> DensifyReport:
        if step < self.config.stop_step:
            self.update_stats(gaussians, stats)
        return self.step(gaussians, optimizer, step)

    def update_stats(self, gaussians: Gaussians, stats: ScreenStats) -> None:
        """Accumulate screen-space gradient norms and radii of one (batched) render."""
        grad = stats.means2d_grad
        if grad is None:
            raise RuntimeError("the render's means2d has no gradient: call after loss.backward() on a render made with grad")
        n = gaussians.num_points
        if self.grad_sum is None or self.grad_sum.shape[0] != n:
            self._reset_stats(n, gaussians.means.device)
        assert self.grad_sum is not None and self.grad_count is not None and self.max_screen_fraction is not None
        batch = grad.shape[0]
        scale = torch.tensor([stats.width / 2.0, stats.height / 2.0], dtype=grad.dtype, device=grad.device)
        norms = (grad * scale * batch).norm(dim=-1)  # [B, N]
        visible = stats.visible.to(norms.dtype)
        self.grad_sum += (norms * visible).sum(0)
        self.grad_count += visible.sum(0)
        fraction = stats.radii.detach().amax(0).to(self.max_screen_fraction.dtype) / max(stats.width, stats.height)
        self.max_screen_fraction = torch.maximum(self.max_screen_fraction, fraction)

    def step(self, gaussians: Gaussians, optimizer: torch.optim.Optimizer, step: int) -> DensifyReport:
        """Densify/prune and reset opacities when the schedule says so."""
        cfg = self.config
        report = DensifyReport(num_points=gaussians.num_points)
        if cfg.start_step < step < cfg.stop_step and step % cfg.interval == 0 and self.grad_sum is not None:
            report = self._densify_and_prune(gaussians, optimizer, step)
        if cfg.opacity_reset_interval > 0 and step > 0 and step % cfg.opacity_reset_interval == 0 and step < cfg.stop_step:
            ceiling = torch.logit(torch.tensor(cfg.opacity_reset_value))
            reset_parameter(gaussians, optimizer, "opacity_logits", torch.minimum(gaussians.opacity_logits.detach(), ceiling.to(gaussians.opacity_logits)))
            report.opacity_reset = True
        return report

    def _densify_and_prune(self, gaussians: Gaussians, optimizer: torch.optim.Optimizer, step: int) -> DensifyReport:
        cfg = self.config
        assert self.grad_sum is not None and self.grad_count is not None and self.max_screen_fraction is not None
        n = gaussians.num_points
        with torch.no_grad():
            mean_grad = self.grad_sum / self.grad_count.clamp_min(1)
            candidates = mean_grad >= cfg.grad_threshold
            small = gaussians.scales.max(dim=1).values <= cfg.clone_max_scale * cfg.scene_extent
            candidates = self._within_budget(candidates, mean_grad, small, n)
            clone, split = candidates & small, candidates & ~small
            new_rows = _clone_rows(gaussians, clone)
            children = _split_rows(gaussians, split, cfg.split_count, cfg.split_shrink, self.generator)
            rows = {name: torch.cat([new_rows[name], children[name]]) for name in new_rows}
        screen_fraction = torch.cat([self.max_screen_fraction, self.max_screen_fraction.new_zeros(rows["means"].shape[0])])
        append_points(gaussians, optimizer, rows)
        with torch.no_grad():
            drop = torch.cat([split, split.new_zeros(rows["means"].shape[0])])
            drop |= gaussians.opacities[:, 0] < cfg.prune_min_opacity
            if step > cfg.size_prune_start_step:
                if cfg.prune_max_scale > 0:
                    drop |= gaussians.scales.max(dim=1).values > cfg.prune_max_scale * cfg.scene_extent
                if cfg.prune_max_screen_fraction > 0:
                    drop |= screen_fraction > cfg.prune_max_screen_fraction
        keep_points(gaussians, optimizer, ~drop)
        self._reset_stats(gaussians.num_points, gaussians.means.device)
        return DensifyReport(
            cloned=int(clone.sum()), split=int(split.sum()), pruned=int(drop.sum()) - int(split.sum()),
            num_points=gaussians.num_points,
        )

    def _within_budget(self, candidates: Tensor, mean_grad: Tensor, small: Tensor, n: int) -> Tensor:
        """With `max_points`, keep the highest-gradient candidates whose growth fits the cap."""
        if self.config.max_points <= 0:
            return candidates
        budget = self.config.max_points - n
        growth = torch.where(small, 1, self.config.split_count - 1)
        order = torch.argsort(torch.where(candidates, mean_grad, -math.inf), descending=True)
        fits = (torch.cumsum(growth[order] * candidates[order], 0) <= budget) & candidates[order]
        limited = torch.zeros_like(candidates)
        limited[order[fits]] = True
        return limited

    def _reset_stats(self, n: int, device: torch.device) -> None:
        self.grad_sum = torch.zeros(n, device=device)
        self.grad_count = torch.zeros(n, device=device)
        self.max_screen_fraction = torch.zeros(n, device=device)


def _clone_rows(gaussians: Gaussians, mask: Tensor) -> dict[str, Tensor]:
    return {name: param.detach()[mask].clone() for name, param in gaussians.named_parameters()}


def _split_rows(
    gaussians: Gaussians, mask: Tensor, count: int, shrink: float, generator: torch.Generator | None
) -> dict[str, Tensor]:
    """`count` children per masked Gaussian, centred at samples of the parent, scales / shrink."""
    rows = {name: param.detach()[mask].repeat_interleave(count, dim=0) for name, param in gaussians.named_parameters()}
    scales = torch.exp(rows["log_scales"])
    rotation = quaternion_to_matrix(torch.nn.functional.normalize(rows["quats"], dim=-1))
    noise = torch.randn(scales.shape, generator=generator).to(scales)
    offsets = (rotation @ (noise * scales).unsqueeze(-1)).squeeze(-1)
    rows["means"] = rows["means"] + offsets
    rows["log_scales"] = rows["log_scales"] - math.log(shrink)
    return rows
