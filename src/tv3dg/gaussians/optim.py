"""Adam over the Gaussian parameters, one parameter group per attribute, each with a scheduled lr.

Each group is named after its `Gaussians` attribute and holds exactly that one tensor, which is
what lets densification find and resize the optimiser state that belongs to each parameter.
Defaults are the usual 3DGS learning rates for a scene of unit extent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tv3dg.config import Schedule, schedule_value
from tv3dg.gaussians.model import PARAMETER_NAMES, Gaussians


@dataclass
class OptimConfig:
    """Per-group learning rates (each a constant or `[start_step, start, end, end_step]`) and Adam settings."""

    means: Schedule = 1.6e-4
    """Learning rate of the Gaussian centres."""
    log_scales: Schedule = 5e-3
    """Learning rate of the log scales."""
    quats: Schedule = 1e-3
    """Learning rate of the rotation quaternions."""
    opacity_logits: Schedule = 5e-2
    """Learning rate of the opacity logits."""
    sh_dc: Schedule = 2.5e-3
    """Learning rate of the base colour (SH degree 0)."""
    sh_rest: Schedule = 1.25e-4
    """Learning rate of the higher SH coefficients."""
    beta1: float = 0.9
    """Adam's first-moment decay."""
    beta2: float = 0.999
    """Adam's second-moment decay."""
    eps: float = 1e-15
    """Adam's epsilon."""

    def learning_rates(self, step: int) -> dict[str, float]:
        return {name: schedule_value(getattr(self, name), step) for name in PARAMETER_NAMES}


def build_optimizer(gaussians: Gaussians, config: OptimConfig) -> torch.optim.Adam:
    """Adam with one named group per Gaussian attribute, learning rates at step 0."""
    rates = config.learning_rates(0)
    groups = [{"params": [getattr(gaussians, name)], "lr": rates[name], "name": name} for name in PARAMETER_NAMES]
    return torch.optim.Adam(groups, lr=0.0, betas=(config.beta1, config.beta2), eps=config.eps)


def update_learning_rates(optimizer: torch.optim.Optimizer, config: OptimConfig, step: int) -> dict[str, float]:
    """Set every group's lr to its schedule at `step`; returns the rates (for logging)."""
    rates = config.learning_rates(step)
    for group in optimizer.param_groups:
        group["lr"] = rates[group["name"]]
    return rates
