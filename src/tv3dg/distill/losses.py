"""The distillation step: draw t, run one objective of `tv3dg.distill.objectives.LOSSES`, weight
and clean its direction; then send the step on the latents back to the renders.

The gradient reaches the render in one of two ways (`DistillConfig.target_space`):
`distillation_loss` ("latent") is a scalar whose backward pass sends it through the VAE encoder;
`decoded_target_loss` ("image") decodes the stepped latents z0 - grad and pulls the render
towards that image, so no gradient goes through the encoder at all.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tv3dg.config import schedule_value
from tv3dg.distill.config import DistillConfig
from tv3dg.distill.objectives import LOSSES, GuidanceScales, LossInputs, rms
from tv3dg.distill.timesteps import sample_timestep, timestep_weight
from tv3dg.priors.base import Conditions, DiffusionPrior
from tv3dg.priors.images import resize


def guidance_scales(config: DistillConfig, step: int) -> GuidanceScales:
    """The guidance scales of `config` at `step`."""
    return GuidanceScales(
        cfg=schedule_value(config.cfg_scale, step),
        pag=schedule_value(config.pag_scale, step),
        text=schedule_value(config.text_scale, step),
        image=schedule_value(config.image_scale, step),
        split=config.split_guidance,
    )


def compute_distillation(
    prior: DiffusionPrior,
    latents: Tensor,
    conditions: Conditions,
    step: int,
    config: DistillConfig,
    generator: torch.Generator | None = None,
    timestep: int | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The gradient of the chosen loss on the latents z0 [B,C,h,w] and scalars to log.

    t is drawn from the annealed range at `step` (or given as `timestep`). The gradient is
    w(t) * direction, NaNs zeroed, clipped to [-grad_clip, grad_clip] when grad_clip > 0.
    """
    t = sample_timestep(config, step, prior.num_train_timesteps, generator) if timestep is None else int(timestep)
    calls_before = prior.counter.calls
    inputs = LossInputs(
        prior, latents.detach(), conditions, t, guidance_scales(config, step), config.inversion_steps,
        config.inversion_stride, round(schedule_value(config.ism_delta, step)), generator,
    )
    direction, logs = LOSSES[config.loss].direction(inputs)
    weight = timestep_weight(config.weighting, float(prior.alphas_cumprod[t]))
    grad = torch.nan_to_num(weight * direction, nan=0.0, posinf=0.0, neginf=0.0)
    clip = schedule_value(config.grad_clip, step)
    if clip > 0:
        grad = grad.clamp(-clip, clip)
    logs.update(t=float(t), weight=weight, grad_rms=rms(grad), unet_calls=float(prior.counter.calls - calls_before))
    return grad, logs


def distillation_loss(latents: Tensor, grad: Tensor) -> Tensor:
    """0.5 * ||z0 - (z0 - grad)||^2 / B: its gradient on z0 is grad / B, its value logs the size."""
    target = (latents - grad).detach()
    return 0.5 * (latents - target).pow(2).sum() / latents.shape[0]


def encode_renders(prior: DiffusionPrior, images: Tensor, target_space: str) -> Tensor:
    """z0 of the renders [B,3,H,W]; the encoder is differentiated only when the step goes back through it."""
    with torch.set_grad_enabled(torch.is_grad_enabled() and target_space == "latent"):
        return prior.encode_images(images)


def render_loss(prior: DiffusionPrior, images: Tensor | None, latents: Tensor, grad: Tensor, target_space: str) -> Tensor:
    """The scalar to `.backward()` that sends the step `grad` on z0 into the renders `images`
    (None when z0 itself is the parameter, which only the "latent" space allows)."""
    if target_space == "image":
        return decoded_target_loss(prior, images, latents, grad)
    return distillation_loss(latents, grad)


def decoded_target_loss(prior: DiffusionPrior, images: Tensor, latents: Tensor, grad: Tensor) -> Tensor:
    """0.5 * ||x - D(z0 - grad)||^2 / B on the renders x [B,3,H,W]: the same step, taken in image space.

    The target is an image the VAE can represent, and the render is pulled towards it pixel by
    pixel. Stepped back through the encoder instead, on the mini prior every Gaussian drifted to
    its own stray colour (speckle that shifted the hues the classifier reads); this path does not.
    """
    with torch.no_grad():
        target = prior.decode_latents(latents - grad)
        target = resize(target, images.shape[-2], images.shape[-1]).to(images.dtype)
    return 0.5 * (images - target).pow(2).sum() / images.shape[0]
