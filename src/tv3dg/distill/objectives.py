"""The five distillation objectives and the one table of them (`LOSSES`) that configs, commands
and benchmarks read: SDS, CSD, ISM, CSM, VPCSM.

Each objective returns the bracketed direction of its gradient on the latents (before the
timestep weight w(t)) and scalars to log. With eps(.) the prior's noise prediction at z_t and
scales s:

- classifier term  C = s (eps(c+) - eps(c-)),  or with split guidance
                   C = s_txt (eps(text) - eps(c-)) + s_img (eps(c+) - eps(text))
- SDS:   eps(c-) + C - eps,                      z_t = q(z0, eps), eps ~ N(0, I)
- CSD:   C,                                      z_t = q(z0, eps)
- ISM:   eps(c-) + C - eps(z_s, s, c0),          z_s, z_t by DDIM inversion, s = t - delta
- CSM:   C,                                      z_t by DDIM inversion of z0 under c0
- VPCSM: C + s_pag (eps(c+) - eps_ptb(c+)),      as CSM; [c-, (text,) c+, c+ perturbed] in one call

This module knows nothing of configs, so `DistillConfig` can take its loss names from `LOSSES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from tv3dg.diffusion.ddim import DDIMWalk, ddim_walk, inversion_path
from tv3dg.priors.base import Conditions, DiffusionPrior


@dataclass
class GuidanceScales:
    """The guidance scales of one step (schedules evaluated)."""

    cfg: float
    pag: float
    text: float
    image: float
    split: bool


@dataclass
class LossInputs:
    """What every objective receives (schedules evaluated at the current step)."""

    prior: DiffusionPrior
    latents: Tensor  # z0, detached
    conditions: Conditions
    t: int
    scales: GuidanceScales
    inversion_steps: int
    inversion_stride: int
    ism_delta: int  # timesteps between s and t for ISM
    generator: torch.Generator | None


Direction = Callable[[LossInputs], tuple[Tensor, dict[str, float]]]


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


def inversion_to(inputs: LossInputs, target: int) -> list[int]:
    return inversion_path(target, inputs.inversion_steps, inputs.inversion_stride)


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
    s = max(inputs.t - inputs.ism_delta, 0)
    walk = invert(inputs, inversion_to(inputs, s) + [inputs.t])
    pred = inputs.prior.predict_noise(walk.latents, inputs.t, inputs.conditions, classifier_branches(inputs.scales))
    classifier, difference = classifier_term(pred, inputs.scales), pred["negative"] - walk.noise_predictions[-1]
    return difference + classifier, {"classifier_rms": rms(classifier), "difference_rms": rms(difference), "s": float(s)}


def csm(inputs: LossInputs) -> tuple[Tensor, dict[str, float]]:
    walk = invert(inputs, inversion_to(inputs, inputs.t))
    pred = inputs.prior.predict_noise(walk.latents, inputs.t, inputs.conditions, classifier_branches(inputs.scales))
    classifier = classifier_term(pred, inputs.scales)
    return classifier, {"classifier_rms": rms(classifier)}


def vpcsm(inputs: LossInputs) -> tuple[Tensor, dict[str, float]]:
    scales = inputs.scales
    walk = invert(inputs, inversion_to(inputs, inputs.t))
    branches = classifier_branches(scales) + (("positive_perturbed",) if scales.pag > 0 else ())
    pred = inputs.prior.predict_noise(walk.latents, inputs.t, inputs.conditions, branches)
    classifier = classifier_term(pred, scales)
    if scales.pag <= 0:
        return classifier, {"classifier_rms": rms(classifier), "pag_rms": 0.0}
    pag = scales.pag * (pred["positive"] - pred["positive_perturbed"])
    return classifier + pag, {"classifier_rms": rms(classifier), "pag_rms": rms(pag)}


@dataclass(frozen=True)
class Objective:
    """One entry of the table: its name, its direction, and what the commands say about it."""

    name: str
    direction: Direction
    summary: str  # one line for --help


LOSSES: dict[str, Objective] = {
    objective.name: objective
    for objective in (
        Objective("vpcsm", vpcsm, "CSM with the visual prompt's IP-Adapter tokens and perturbed-attention guidance (TV-3DG)"),
        Objective("csm", csm, "classifier score matching: the classifier term on DDIM-inverted noise"),
        Objective("ism", ism, "interval score matching: SDS with DDIM-inverted noise and a denoised target"),
        Objective("csd", csd, "classifier score distillation: the classifier term on random noise"),
        Objective("sds", sds, "score distillation sampling (DreamFusion)"),
    )
}
"""Every distillation loss, the default (vpcsm) first."""

LOSS_NAMES = tuple(LOSSES)


def loss_help() -> str:
    """The --loss help text of every command: each name with its one-line summary."""
    return "distillation loss (default vpcsm): " + "; ".join(f"{o.name}: {o.summary}" for o in LOSSES.values())
