"""The 2D playground: optimise one image (or one latent) with a distillation loss.

The same loss code as in 3D, with the image itself as the "render": a sigmoid-parametrised
RGB image is encoded by the VAE each step and the step reaches it as in 3D, back through the
encoder or as a decoded target (`distill.target_space`) (target "image"), or the latent is
optimised directly and decoded for display (target "latent"). The result is a strip of
snapshots showing how each loss moves the image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from tv3dg.distill.config import DistillConfig
from tv3dg.distill.losses import compute_distillation, encode_renders, render_loss
from tv3dg.distill.playground_config import Target
from tv3dg.errors import UserError
from tv3dg.priors.base import Conditions
from tv3dg.priors.diffusers_prior import DiffusersPrior

WHITE_START = 0.95
"""Every pixel's value at the start: white, inside the sigmoid's range (its logit is about 2.9)."""


@dataclass
class PlaygroundRun:
    frames: list[Tensor] = field(default_factory=list)  # [3, R, R] in [0, 1]
    frame_steps: list[int] = field(default_factory=list)
    logs: list[dict[str, float]] = field(default_factory=list)  # one per step
    seconds: float = 0.0


def snapshot_steps(steps: int, frames: int) -> list[int]:
    """Evenly spaced steps from 0 (the start) to `steps` (the result), `frames` of them."""
    if frames <= 1:
        return [steps]
    return sorted({round(steps * i / (frames - 1)) for i in range(frames)})


def optimise_image(
    prior: DiffusersPrior,
    conditions: Conditions,
    config: DistillConfig,
    steps: int,
    lr: float,
    target: Target = "image",
    frames: int = 8,
    seed: int = 0,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> PlaygroundRun:
    """Adam on the image logits (or the latent) against `config.loss`; snapshots at even steps."""
    if target == "latent" and config.target_space == "image":
        raise UserError("distill.target_space=image needs an image to pull; use --target image or distill.target_space=latent")
    generator = torch.Generator().manual_seed(seed)
    size = prior.resolution
    # An empty render: the white background of the 3D run's renders, which the VAE reproduces.
    # Mid-grey with pixel noise is no image a VAE trained on renders has seen: the mini prior's
    # decodes it as a dark green, speckled square, and every decoded target keeps that colour.
    start = torch.full((1, 3, size, size), WHITE_START, device=prior.device)
    if target == "image":
        param = torch.logit(start).requires_grad_(True)
    else:
        with torch.no_grad():
            param = prior.encode_images(start).requires_grad_(True)
    optimiser = torch.optim.Adam([param], lr=lr)

    def current_image() -> Tensor:
        with torch.no_grad():
            image = torch.sigmoid(param) if target == "image" else prior.decode_latents(param)
        return image[0].float().cpu()

    run = PlaygroundRun()
    keep = set(snapshot_steps(steps, frames))
    began = time.perf_counter()
    for step in range(steps + 1):
        if step in keep:
            run.frames.append(current_image())
            run.frame_steps.append(step)
        if step == steps:
            break
        image = torch.sigmoid(param) if target == "image" else None
        latents = param if image is None else encode_renders(prior, image, config.target_space)
        grad, logs = compute_distillation(prior, latents, conditions, step, config, generator)
        optimiser.zero_grad(set_to_none=True)
        render_loss(prior, image, latents, grad, config.target_space).backward()
        optimiser.step()
        run.logs.append(logs)
        if on_step is not None:
            on_step(step, logs)
    run.seconds = time.perf_counter() - began
    return run
