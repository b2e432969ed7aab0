"""The annealed timestep range and the timestep weighting w(t)."""

from __future__ import annotations

import math

import torch

from tv3dg.config import schedule_value
from tv3dg.distill.config import DistillConfig


def timestep_range(config: DistillConfig, step: int, num_train_timesteps: int) -> tuple[int, int]:
    """Integer bounds [low, high] of t at `step` (t >= 1 so that there is always a move from 0)."""
    top = num_train_timesteps - 1
    low = min(max(1, int(schedule_value(config.t_min, step) * num_train_timesteps)), top)
    high = min(max(low, int(schedule_value(config.t_max, step) * num_train_timesteps)), top)
    return low, high


def sample_timestep(
    config: DistillConfig, step: int, num_train_timesteps: int, generator: torch.Generator | None = None
) -> int:
    """One t for the whole batch, uniform over the range at `step`."""
    low, high = timestep_range(config, step, num_train_timesteps)
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def timestep_weight(weighting: str, alpha_cumprod: float) -> float:
    """w(t): "sds" 1 - abar, "sqrt" sqrt((1 - abar) / abar), "uniform" 1."""
    if weighting == "sds":
        return 1.0 - alpha_cumprod
    if weighting == "sqrt":
        return math.sqrt((1.0 - alpha_cumprod) / alpha_cumprod)
    return 1.0
