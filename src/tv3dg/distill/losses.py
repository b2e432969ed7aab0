"""Score-distillation losses as sibling functions over the same inputs: SDS, CSD, ISM, CSM, VPCSM.

Each returns the bracketed direction of its gradient on the latents (before the timestep weight
w(t)) and scalars to log; `compute_distillation` draws t, calls one of them, applies w(t),
cleans and clips. With eps(.) the prior's noise prediction at z_t and scales s:

- classifier term  C = s (eps(c+) - eps(c-)),  or with split guidance
                   C = s_txt (eps(text) - eps(c-)) + s_img (eps(c+) - eps(text))
- SDS:   eps(c-) + C - eps,                      z_t = q(z0, eps), eps ~ N(0, I)
- CSD:   C,                                      z_t = q(z0, eps)
- ISM:   eps(c-) + C - eps(z_s, s, c0),          z_s, z_t by DDIM inversion, s = t - delta
- CSM:   C,                                      z_t by DDIM inversion of z0 under c0
- VPCSM: C + s_pag (eps(c+) - eps_ptb(c+)),      as CSM; [c-, (text,) c+, c+ perturbed] in one call

The gradient reaches the render in one of two ways (`DistillConfig.target_space`):
`distillation_loss` ("latent") is a scalar whose backward pass sends it through the VAE encoder;
`decoded_target_loss` ("image") decodes the stepped latents z0 - grad and pulls the render
towards that image, so no gradient goes through the encoder at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from tv3dg.config import schedule_value
from tv3dg.distill.config import DistillConfig
from tv3dg.diffusion.ddim import DDIMWalk, ddim_walk, inversion_path
from tv3dg.distill.timesteps import sample_timestep, timestep_weight
from tv3dg.priors.base import Conditions, DiffusionPrior
from tv3dg.priors.images import resize


@dataclass
class GuidanceScales:
    """The guidance scales of one step (schedules evaluated)."""

    cfg: float
    pag: float
    text: float
    image: float
    split: bool

    @classmethod
    def at(cls, config: DistillConfig, step: int) -> "GuidanceScales":
        return cls(
            cfg=schedule_value(config.cfg_scale, step),
            pag=schedule_value(config.pag_scale, step),
            text=schedule_value(config.text_scale, step),
            image=schedule_value(config.image_scale, step),
            split=config.split_guidance,
        )


@dataclass
class LossInputs:
    """What every loss function receives."""

    prior: DiffusionPrior
    latents: Tensor  # z0, detached
    conditions: Conditions
    t: int
    scales: GuidanceScales
    config: DistillConfig
    step: int
    generator: torch.Generator | None


def rms(x: Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def classifier_branches(scales: GuidanceScales) -> tuple[str, ...]:
    return ("negative", "text", "positive") if scales.split else ("negative", "positive")


def classifier_term(noise: dict[str, Tensor], scales: GuidanceScales) -> Tensor:
    if scales.split:
        return scales.text * (noise["text"] - noise["negative"]) + scales.image * (noise["positive"] - noise["text"])
    return scales.cfg * (noise["positive"] - noise["negative"])


def forward_noise(inputs: LossInputs) -> tuple[Tensor, Tensor]:
    """z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps with fresh eps ~ N(0, I)."""
    z0 = inputs.latents
    noise = torch.randn(z0.shape, generator=inputs.generator).to(z0.device)
    abar = inputs.prior.alphas_cumprod[inputs.t]
    return abar.sqrt() * z0 + (1 - abar).sqrt() * noise, noise


def invert(inputs: LossInputs, path: list[int]) -> DDIMWalk:
    """Deterministic DDIM inversion of z0 along `path` under the empty condition c0."""
    prior, conditions = inputs.prior, inputs.conditions

    def predict_empty(z: Tensor, t: int) -> Tensor:
        return prior.predict_noise(z, t, conditions, ("empty",))["empty"]

    return ddim_walk(predict_empty, inputs.latents, path, prior.alphas_cumprod)


def sds(inputs: LossInputs) -> tuple[Tensor, dict[str, float]]:
    z_t, noise = forward_noise(inputs)
    pred = inputs.prior.predict_noise(z_t, inputs.t, inputs.conditions, classifier_branches(inputs.scales))
    classifier, difference = classifier_term(pred, inputs.scales), pred["negative"] - noise
    return difference + classifier, {"classifier_rms": rms(classifier), "difference_rms": rms(difference)}


def csd(inputs: LossInputs) -> tuple[Tensor, dict[str, float]]:
    z_t, _ = forward_noise(inputs)
    pred = inputs.prior.predict_noise(z_t, inputs.t, inputs.conditions, classifier_branches(inputs.scales))
    classifier = classifier_term(pred, inputs.scales)
    return classifier, {"classifier_rms": rms(classifier)}


def ism(inputs: LossInputs) -> tuple[Tensor, dict[str, float]]:
    config = inputs.config
    s = max(inputs.t - round(schedule_value(config.ism_delta, inputs.step)), 0)
    walk = invert(inputs, inversion_path(s, config.inversion_steps, config.inversion_stride) + [inputs.t])
    pred = inputs.prior.predict_noise(walk.latents, inputs.t, inputs.conditions, classifier_branches(inputs.scales))
    classifier, difference = classifier_term(pred, inputs.scales), pred["negative"] - walk.noise_predictions[-1]
    return difference + classifier, {"classifier_rms": rms(classifier), "difference_rms": rms(difference), "s": float(s)}


def csm(inputs: LossInputs) -> tuple[Tensor, dict[str, float]]:
    walk = invert(inputs, inversion_path(inputs.t, inputs.config.inversion_steps, inputs.config.inversion_stride))
    pred = inputs.prior.predict_noise(walk.latents, inputs.t, inputs.conditions, classifier_branches(inputs.scales))
    classifier = classifier_term(pred, inputs.scales)
    return classifier, {"classifier_rms": rms(classifier)}


def vpcsm(inputs: LossInputs) -> tuple[Tensor, dict[str, float]]:
    scales = inputs.scales
    walk = invert(inputs, inversion_path(inputs.t, inputs.config.inversion_steps, inputs.config.inversion_stride))
    branches = classifier_branches(scales) + (("positive_perturbed",) if scales.pag > 0 else ())
    pred = inputs.prior.predict_noise(walk.latents, inputs.t, inputs.conditions, branches)
    classifier = classifier_term(pred, scales)
    if scales.pag <= 0:
        return classifier, {"classifier_rms": rms(classifier), "pag_rms": 0.0}
    pag = scales.pag * (pred["positive"] - pred["positive_perturbed"])
    return classifier + pag, {"classifier_rms": rms(classifier), "pag_rms": rms(pag)}


LOSSES: dict[str, Callable[[LossInputs], tuple[Tensor, dict[str, float]]]] = {
    "sds": sds, "csd": csd, "ism": ism, "csm": csm, "vpcsm": vpcsm,
}


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
    inputs = LossInputs(prior, latents.detach(), conditions, t, GuidanceScales.at(config, step), config, step, generator)
    direction, logs = LOSSES[config.loss](inputs)
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
