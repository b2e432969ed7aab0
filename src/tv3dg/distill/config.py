"""The typed config of score distillation, validated on construction (one-line errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tv3dg.config import Schedule
from tv3dg.diffusion.guidance import check_scale
from tv3dg.distill.objectives import LOSS_NAMES
from tv3dg.errors import UserError

LossName = Literal[LOSS_NAMES]  # type: ignore[valid-type]  # the names of `objectives.LOSSES`

MAX_PAG = 50.0


def schedule_ends(value: Schedule) -> list[float]:
    """The values a schedule takes at its ends (it is linear in between)."""
    return [float(value)] if isinstance(value, (int, float)) else [float(value[1]), float(value[2])]


@dataclass
class DistillConfig:
    """Which loss, its guidance scales and timestep schedule (every float may be a schedule).

    Timesteps are fractions of the training timesteps; t is drawn uniformly from
    [t_min, t_max] each step, one t for the whole batch. `inversion_steps` DDIM moves reach t
    (ISM: reach t - ism_delta, then one more move to t); `inversion_stride` 0 spaces them evenly,
    otherwise each covers that many timesteps and the last one goes to t.
    """

    loss: LossName = "vpcsm"
    """The distillation loss; the others are the ablation's baselines (see the method page)."""
    cfg_scale: Schedule = 7.5
    """Classifier-free guidance scale s of the classifier term."""
    pag_scale: Schedule = 3.0
    """Perturbed-attention guidance scale (VPCSM only); 0 skips the perturbed branch."""
    split_guidance: bool = False
    """Guide text and image with their own scales (`text_scale`, `image_scale`; three UNet branches)."""
    text_scale: Schedule = 7.5
    """Text guidance scale when `split_guidance` is on."""
    image_scale: Schedule = 3.0
    """Image guidance scale when `split_guidance` is on."""
    weighting: Literal["sds", "sqrt", "uniform"] = "sds"
    """Timestep weighting w(t): `sds` 1-abar, `sqrt` sqrt((1-abar)/abar), `uniform` 1."""
    t_min: Schedule = 0.02
    """Lower end of the timestep range, a fraction of the training timesteps."""
    t_max: Schedule = field(default_factory=lambda: [0, 0.98, 0.5, 1000])
    """Upper end of the timestep range (default: anneals from 0.98 to 0.5 over 1000 steps)."""
    inversion_steps: int = 2
    """DDIM inversion moves from z0 to t (CSM, VPCSM) or to s = t - delta (ISM)."""
    inversion_stride: int = 0
    """Timesteps covered by each inversion move, the last one going to t; 0: evenly spaced."""
    ism_delta: Schedule = 80.0
    """Timesteps between s and t for ISM."""
    grad_clip: Schedule = 0.0
    """Clamp each element of the latent gradient to [-c, c]; 0: off."""
    target_space: Literal["latent", "image"] = "latent"
    """How the step reaches the render: `latent` backpropagates through the VAE encoder; `image` decodes z0 - grad and uses it as a pixel target."""

    def __post_init__(self) -> None:
        for name in ("cfg_scale", "text_scale", "image_scale"):
            for value in schedule_ends(getattr(self, name)):
                check_scale(name, value)
        for value in schedule_ends(self.pag_scale):
            check_scale("pag_scale", value, high=MAX_PAG, allow_low=True)
        for name in ("t_min", "t_max"):
            for value in schedule_ends(getattr(self, name)):
                if not 0.0 <= value <= 1.0:
                    raise UserError(f"{name} {value} is out of range; timesteps are fractions in [0, 1]")
        if max(schedule_ends(self.t_min)) >= min(schedule_ends(self.t_max)):
            raise UserError("t_min must stay below t_max; e.g. t_min 0.02 and t_max [0, 0.98, 0.5, 1000]")
        if not 1 <= self.inversion_steps <= 50:
            raise UserError(f"inversion_steps {self.inversion_steps} is out of range; use 1 to 50")
        if self.inversion_stride < 0:
            raise UserError(f"inversion_stride must be >= 0 (0 = evenly spaced), got {self.inversion_stride}")
        if min(schedule_ends(self.ism_delta)) < 0 or min(schedule_ends(self.grad_clip)) < 0:
            raise UserError("ism_delta and grad_clip must be >= 0")
