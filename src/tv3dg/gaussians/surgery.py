"""Resize the Gaussians and their optimiser state together.

Adding or removing Gaussians replaces every parameter tensor. The optimiser's per-row state
(Adam's `exp_avg`, `exp_avg_sq`) must follow the same rows, or moments of one Gaussian would
drive another; new rows start with zero moments. Scalar state (Adam's `step`) is kept.
Groups are matched by the `name` that `tv3dg.gaussians.optim.build_optimizer` gives them.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from tv3dg.gaussians.model import PARAMETER_NAMES, Gaussians

RowUpdate = Callable[[Tensor], Tensor]


def _replace(gaussians: Gaussians, optimizer: torch.optim.Optimizer | None, name: str, param_update: RowUpdate, state_update: RowUpdate) -> None:
    old = getattr(gaussians, name)
    new = nn.Parameter(param_update(old.detach()), requires_grad=old.requires_grad)
    setattr(gaussians, name, new)
    if optimizer is None:
        return
    for group in optimizer.param_groups:
        if group.get("name") != name:
            continue
        if len(group["params"]) != 1 or group["params"][0] is not old:
            raise ValueError(f"optimiser group '{name}' does not hold exactly Gaussians.{name}")
        group["params"][0] = new
        state = optimizer.state.pop(old, None)
        if state is not None:
            optimizer.state[new] = {
                key: state_update(value) if torch.is_tensor(value) and value.shape[:1] == old.shape[:1] and value.dim() > 0 else value
                for key, value in state.items()
            }


def keep_points(gaussians: Gaussians, optimizer: torch.optim.Optimizer | None, keep: Tensor) -> None:
    """Keep the rows where the bool mask `keep` [N] is true, in every parameter and its state."""
    for name in PARAMETER_NAMES:
        _replace(gaussians, optimizer, name, lambda t: t[keep], lambda s: s[keep])


def append_points(gaussians: Gaussians, optimizer: torch.optim.Optimizer | None, rows: dict[str, Tensor]) -> None:
    """Append rows (one tensor per parameter name, same count) with zero optimiser moments."""
    for name in PARAMETER_NAMES:
        extra = rows[name].to(getattr(gaussians, name))
        _replace(
            gaussians, optimizer, name,
            lambda t, extra=extra: torch.cat([t, extra]),
            lambda s, extra=extra: torch.cat([s, torch.zeros_like(extra, dtype=s.dtype)]),
        )


def reset_parameter(gaussians: Gaussians, optimizer: torch.optim.Optimizer | None, name: str, value: Tensor) -> None:
    """Overwrite one parameter with `value` and zero its optimiser moments."""
    _replace(gaussians, optimizer, name, lambda t: value.to(t).clone(), torch.zeros_like)
