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
AssetFormat = Literal["ply", "compressed.ply", "spz", "splat", "glb"]  # names in tv3dg.gaussians.formats


@dataclass
class CameraConfig:
    """Training cameras; every range bound may be a schedule (progressive ranges)."""

    resolution: int = 64
    """Render size in pixels (the prior resizes renders to its own input size)."""
    views_per_step: int = 4
    """Views rendered and scored by the prior at each step (the batch B)."""
    elevation_deg: tuple[Schedule, Schedule] = (-10.0, 45.0)
    """Range of the camera elevation in degrees, drawn uniformly per view."""
    azimuth_span_deg: Schedule = 360.0
    """Width of the azimuth range in degrees, centred on the front view (360: all around)."""
    radius: tuple[Schedule, Schedule] = (3.0, 3.5)
    """Range of the camera distance from the origin, world units."""
    fov_deg: tuple[Schedule, Schedule] = (35.0, 45.0)
    """Range of the vertical field of view in degrees."""
    background: Literal["white", "black", "random"] = "white"
    """Render background: white, black, or a random colour drawn each step."""


@dataclass
class GaussianConfig:
    """The Gaussians' appearance model, their optimiser and their densification."""

    sh_degree: int = 0
    """Spherical-harmonics degree of the colours (0: one colour per Gaussian, up to 3)."""
    sh_degree_interval: int = 0
    """Raise the active SH degree by one every this many steps (0: start at `sh_degree`)."""
    min_scale: float = 0.0
    """Floor on every Gaussian's scale, world units (0: none); about one render pixel keeps a low-resolution prior from growing sub-pixel speckle."""
    max_scale: float = 0.0
    """Ceiling on every Gaussian's scale, world units (0: none); stops needle-like spikes."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    densify: DensifyConfig = field(default_factory=DensifyConfig)


@dataclass
class VisualPromptConfig:
    """Func Switch: with no image, a sample of the prompt from the prior becomes the visual prompt."""

    sample_steps: int = 30
    """DDIM steps of the text-to-image sample."""
    guidance: float = 5.0
    """Classifier-free guidance scale of that sample."""
    elevation_deg: float = 15.0
    """Elevation of the camera the sample is drawn for, degrees (a camera-conditioned prior such as the mini prior uses it)."""
    azimuth_deg: float = 0.0
    """Azimuth of that camera, degrees (0: the front view)."""


@dataclass
class ExportConfig:
    """What is written after the loop: mesh, turntable, contact sheet."""

    mesh: MeshConfig = field(default_factory=MeshConfig)
    turntable_frames: int = 48
    """Frames of the 360-degree turntable video."""
    turntable_resolution: int = 128
    """Side of the turntable frames in pixels."""
    turntable_format: Literal["mp4", "gif"] = "mp4"
    """Container of the turntable: `turntable.mp4` or `turntable.gif`."""
    turntable_elevation_deg: float = 15.0
    """Camera elevation of the turntable and of `views.png` in degrees."""
    views: int = 8
    """Views in `views.png` and in the attribute metrics, evenly spaced from the front."""
    radius: float = 3.2
    """Camera distance of the turntable and of `views.png`, world units."""
    fov_deg: float = 40.0
    """Field of view of the turntable and of `views.png` in degrees."""
    formats: list[AssetFormat] = field(default_factory=lambda: ["ply", "spz"])
    """Gaussian files written as `asset.<suffix>` (ply, spz, compressed.ply, splat, glb); `ply`, the Inria layout that the app, batch and resume read, must be among them."""

    def __post_init__(self) -> None:
        if "ply" not in self.formats:
            raise UserError(f"export.formats must include 'ply' (the app, batch and render read asset.ply), got {self.formats}")
        if len(set(self.formats)) != len(self.formats):
            raise UserError(f"export.formats lists a format twice: {self.formats}")


@dataclass
class GenerateConfig:
    """Everything one generation run needs; written resolved to the run's `config.yaml`."""

    prompt: str = ""
    """The text prompt (what to make)."""
    image: Optional[str] = None
    """Visual prompt, a PNG or JPEG path; null: Func Switch samples one from the prompt."""
    seed: int = 0
    """Random seed; a run is reproducible from it."""
    steps: int = 600
    """Optimisation steps."""
    loss_weight: Schedule = 1.0
    """Weight of the distillation surrogate loss (the SGC terms are relative to it)."""
    checkpoint_every: int = 100
    """Write `checkpoints/last.safetensors` every this many steps (what `--resume` reads)."""
    max_nonfinite_steps: int = 20
    """Consecutive steps with NaN/Inf gradients (skipped) before the run stops."""
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
    """The resolved config of one run: defaults <- preset <- `updates` <- `key=value` overrides.

    `preset` is `mini`, `sd15` or a YAML file (None: `mini`); `updates` is plain nested data (what
    the command-line flags set, e.g. `{"prompt": "a cube", "distill": {"loss": "csm"}}`);
    `overrides` are strings such as `"sgc.enabled=false"`. Raises `UserError` for an unknown key,
    an ill-typed value, an empty prompt or fewer than one step.
    """
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
