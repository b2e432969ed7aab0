"""`GenerateConfig`: everything one generation run needs, with YAML presets and strict keys.

A preset (`mini`, `sd15`, or a YAML path) is layered on the defaults, then `key=value` overrides;
the result is validated by `tv3dg.config.from_dict`, so a misspelt key is an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Literal, Optional

from tv3dg.calibrate.sgc import SGCConfig
from tv3dg.config import Schedule, deep_merge, from_dict, merge_overrides, read_yaml
from tv3dg.distill.config import DistillConfig
from tv3dg.errors import UserError
from tv3dg.export.mesh import MeshConfig
from tv3dg.gaussians.densify import DensifyConfig
from tv3dg.gaussians.optim import OptimConfig
from tv3dg.init.initializers import InitConfig
from tv3dg.priors.config import PriorConfig

PRESETS = ("mini", "sd15")


@dataclass
class CameraConfig:
    """Training cameras; every range bound may be a schedule (progressive ranges)."""

    resolution: int = 32  # render size (the prior resizes to its own input size)
    views_per_step: int = 4
    elevation_deg: tuple[Schedule, Schedule] = (-10.0, 45.0)
    azimuth_span_deg: Schedule = 360.0  # centred on the front view
    radius: tuple[Schedule, Schedule] = (3.0, 3.5)
    fov_deg: tuple[Schedule, Schedule] = (35.0, 45.0)
    background: Literal["white", "black", "random"] = "white"


@dataclass
class GaussianConfig:
    sh_degree: int = 0
    sh_degree_interval: int = 0  # raise the active SH degree every N steps (0: start at sh_degree)
    # World-space bounds on every Gaussian's scale (0: none). A floor of about one render pixel keeps a
    # low-resolution prior from growing sub-pixel speckle; a ceiling stops needle-like spikes.
    min_scale: float = 0.0
    max_scale: float = 0.0
    optim: OptimConfig = field(default_factory=OptimConfig)
    densify: DensifyConfig = field(default_factory=DensifyConfig)


@dataclass
class VisualPromptConfig:
    """Func Switch: with no image, a sample of the prompt from the prior becomes the visual prompt."""

    sample_steps: int = 30
    guidance: float = 5.0
    elevation_deg: float = 15.0
    azimuth_deg: float = 0.0


@dataclass
class ExportConfig:
    mesh: MeshConfig = field(default_factory=MeshConfig)
    turntable_frames: int = 48
    turntable_resolution: int = 128
    turntable_format: Literal["mp4", "gif"] = "mp4"
    turntable_elevation_deg: float = 15.0
    views: int = 8  # views in views.png and in the attribute metrics
    radius: float = 3.2
    fov_deg: float = 40.0


@dataclass
class GenerateConfig:
    prompt: str = ""
    image: Optional[str] = None  # visual prompt path; None: Func Switch
    seed: int = 0
    steps: int = 600
    loss_weight: Schedule = 1.0  # weight of the distillation surrogate loss
    checkpoint_every: int = 100
    max_nonfinite_steps: int = 20  # consecutive NaN/Inf steps before the run stops
    prior: PriorConfig = field(default_factory=PriorConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    init: InitConfig = field(default_factory=InitConfig)
    gaussians: GaussianConfig = field(default_factory=GaussianConfig)
    sgc: SGCConfig = field(default_factory=SGCConfig)
    visual_prompt: VisualPromptConfig = field(default_factory=VisualPromptConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


def preset_data(preset: str | None) -> dict:
    """Plain data of a named preset (shipped in tv3dg/configs) or of a YAML file."""
    name = preset or "mini"
    if name in PRESETS:
        return read_yaml(Path(str(resources.files("tv3dg") / "configs" / f"{name}.yaml")))
    if not name.endswith((".yaml", ".yml")):
        raise UserError(f"unknown preset '{name}'; use one of {', '.join(PRESETS)} or a .yaml file")
    return read_yaml(name)


def build_config(preset: str | None, updates: dict, overrides: list[str]) -> GenerateConfig:
    """Defaults <- preset <- `updates` (from command-line flags) <- `key=value` overrides."""
    data = deep_merge(preset_data(preset), updates)
    config = from_dict(GenerateConfig, merge_overrides(data, overrides))
    if not config.prompt.strip():
        raise UserError("the prompt is empty; pass --prompt \"a red striped cube\"")
    if config.steps < 1:
        raise UserError(f"steps must be at least 1, got {config.steps}")
    return config


def shortened(config: GenerateConfig, steps: int) -> GenerateConfig:
    """`config` run for `steps` loop steps instead of `config.steps`, with every step count in it scaled by
    the same ratio, so that a short run (a CPU test of a GPU preset) goes through the preset's phases in
    the same order and proportions: warm-ups, densification and its opacity resets, SGC's start, the
    annealed schedules.

    Step counts are the integer fields named `*_step` (not `*_per_step`, a count per step), `*interval`
    and `checkpoint_every`, and the first and last entries of every schedule `[start_step, start_value,
    end_value, end_step]`; each is rounded to the nearest step, and an interval or checkpoint period
    above 0 stays at least 1 (0 still disables).
    Sampler step counts (`*_steps`: DDIM, Shap-E, inversion) are not loop steps and are kept.
    """
    if steps < 1:
        raise UserError(f"steps must be at least 1, got {steps}")
    return replace(_scaled(config, steps / config.steps), steps=steps)


def _scaled(node, ratio: float):
    """A copy of the config dataclass `node` with its step counts scaled by `ratio` (see `shortened`)."""
    changes = {}
    for item in dataclasses.fields(node):
        value = getattr(node, item.name)
        if dataclasses.is_dataclass(value):
            changes[item.name] = _scaled(value, ratio)
        elif _is_schedule(value):
            changes[item.name] = _scaled_schedule(value, ratio)
        elif isinstance(value, tuple) and any(_is_schedule(v) for v in value):
            changes[item.name] = tuple(_scaled_schedule(v, ratio) if _is_schedule(v) else v for v in value)
        elif isinstance(value, int) and not isinstance(value, bool) and item.name.endswith("_step") \
                and not item.name.endswith("_per_step"):
            changes[item.name] = round(value * ratio)
        elif isinstance(value, int) and not isinstance(value, bool) and (
            item.name.endswith("interval") or item.name == "checkpoint_every"
        ):
            changes[item.name] = max(1, round(value * ratio)) if value > 0 else value
    return replace(node, **changes)


def _is_schedule(value) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value)


def _scaled_schedule(value: list, ratio: float) -> list:
    start_step, start_value, end_value, end_step = value
    return [round(start_step * ratio), start_value, end_value, round(end_step * ratio)]
