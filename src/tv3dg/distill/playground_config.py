"""The config of `tv3dg 2d`: its own keys, with a preset's `distill` section as the loss defaults.

There is no table of playground defaults for the loss. The `distill` section comes from the
preset of the prior the playground runs on (the same file `tv3dg generate` reads), so the 2D
view shows the loss exactly as the 3D run uses it. The preset's step schedules are written for
its own run of `steps` steps; they are stretched to the playground's step count, so `t_max`
anneals over the same share of the run.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Literal, Optional

from tv3dg.config import Schedule, deep_merge, from_dict
from tv3dg.distill.config import DistillConfig
from tv3dg.errors import UserError
from tv3dg.priors.config import PriorConfig

Target = Literal["image", "latent"]
MAX_LR = 10.0


@dataclass
class PlaygroundConfig:
    """Everything `tv3dg 2d` runs with; each of its flags sets one of these keys.

    Without `prior.model` the bundled mini prior and its IP-Adapter are used. `distill` is
    filled from a preset by `build_playground_config`.
    """

    prompt: str = ""
    image: Optional[str] = None  # visual prompt; needs an IP-Adapter
    steps: int = 200
    lr: float = 0.05  # Adam learning rate
    target: Target = "image"  # optimise RGB pixels ("image") or the latent itself
    frames: int = 8  # snapshots in the strip
    seed: int = 0
    prior: PriorConfig = field(default_factory=PriorConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self) -> None:
        if not self.prompt.strip():
            raise UserError('the prompt is empty; pass --prompt "a red striped cube"')
        if self.steps < 1:
            raise UserError(f"--steps must be at least 1, got {self.steps}")
        if self.frames < 1:
            raise UserError(f"--frames must be at least 1 (the strip's snapshots), got {self.frames}")
        if not 0 < self.lr <= MAX_LR:
            raise UserError(f"--lr must lie in (0, {MAX_LR:g}], got {self.lr}; the default is {PlaygroundConfig.lr}")


def stretch_schedules(distill: dict, from_steps: int, to_steps: int) -> dict:
    """`distill` data with each schedule's start and end step scaled by to_steps / from_steps."""
    hints = typing.get_type_hints(DistillConfig)
    stretched = dict(distill)
    for key, value in distill.items():
        if hints.get(key) == Schedule and isinstance(value, list) and len(value) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            start, first, last, end = value
            stretched[key] = [round(start * to_steps / from_steps), first, last, round(end * to_steps / from_steps)]
    return stretched


def build_playground_config(chosen: dict, preset_distill: dict, preset_steps: int) -> PlaygroundConfig:
    """The preset's `distill` data (its schedules stretched from `preset_steps` to this run's
    steps) <- `chosen`, the data of the flags and `key=value` overrides.

    With `target: latent` the latent itself is optimised, so the step is taken on it: the
    preset's `target_space` (written for renders) gives way to "latent" unless `chosen` sets it.
    """
    steps = chosen.get("steps", PlaygroundConfig.steps)
    stretchable = isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1 and preset_steps >= 1
    distill = stretch_schedules(preset_distill, preset_steps, steps) if stretchable else dict(preset_distill)
    if chosen.get("target") == "latent":
        distill["target_space"] = "latent"
    return from_dict(PlaygroundConfig, deep_merge({"distill": distill}, chosen))
