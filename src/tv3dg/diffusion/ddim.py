"""Deterministic DDIM moves between timesteps: inversion (up the noise levels) and sampling (down).

One DDIM move from timestep a to b with the noise prediction e = eps(z_a, a):

    x0_hat = (z_a - sqrt(1 - abar_a) e) / sqrt(abar_a)
    z_b    = sqrt(abar_b) x0_hat + sqrt(1 - abar_b) e

Walking an ascending path from 0 is DDIM inversion (z0 is taken as the latent at timestep 0,
whose noise level sqrt(1 - abar_0) is ~0.03 for SD); a descending path is DDIM sampling. Both run
under no_grad: the noise they find is a constant for the losses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

NoisePredictor = Callable[[Tensor, int], Tensor]
"""(latents, timestep) -> predicted noise, e.g. the prior under the empty condition."""


def ddim_step(latents: Tensor, noise: Tensor, abar_from: Tensor | float, abar_to: Tensor | float) -> Tensor:
    """Move `latents` from the noise level abar_from to abar_to along the predicted `noise`."""
    abar_from = torch.as_tensor(abar_from, dtype=latents.dtype, device=latents.device)
    abar_to = torch.as_tensor(abar_to, dtype=latents.dtype, device=latents.device)
    x0_hat = (latents - (1 - abar_from).sqrt() * noise) / abar_from.sqrt()
    return abar_to.sqrt() * x0_hat + (1 - abar_to).sqrt() * noise


def inversion_path(target: int, steps: int, stride: int = 0) -> list[int]:
    """Ascending timesteps from 0 to `target` in at most `steps` moves.

    stride 0: `steps` evenly spaced moves. stride > 0: moves of `stride` timesteps from 0, the
    last move going to `target` (so fewer moves when `target` is reached early).
    """
    if target <= 0:
        return [0]
    if stride <= 0:
        points = [round(target * j / steps) for j in range(steps + 1)]
    else:
        points = [min(j * stride, target) for j in range(steps)] + [target]
    return list(dict.fromkeys(points))


def sampling_path(steps: int, num_train_timesteps: int) -> list[int]:
    """Descending timesteps from the last training timestep to 0, `steps` evenly spaced moves."""
    top = num_train_timesteps - 1
    return list(dict.fromkeys(round(top * (1 - j / steps)) for j in range(steps + 1)))


@dataclass
class DDIMWalk:
    latents: Tensor  # the latents at path[-1]
    noise_predictions: list[Tensor]  # eps(z_a, a) for every a in path[:-1]


@torch.no_grad()
def ddim_walk(predict: NoisePredictor, latents: Tensor, path: list[int], alphas_cumprod: Tensor) -> DDIMWalk:
    """Follow `path` with one noise prediction per move (ascending: inversion; descending: sampling)."""
    predictions = []
    for current, following in zip(path[:-1], path[1:]):
        noise = predict(latents, current)
        predictions.append(noise)
        latents = ddim_step(latents, noise, alphas_cumprod[current], alphas_cumprod[following])
    return DDIMWalk(latents, predictions)
