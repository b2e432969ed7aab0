"""What the app is launched with and what a page asks for, turned into a `GenerateConfig` by the
same `build_config` and image reader as `tv3dg generate`, so bad input fails with the same line.
The app adds its own bounds: steps, prompt length, and a visual prompt only from its uploads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from tv3dg.app.retention import Retention
from tv3dg.app.uploads import uploaded_file
from tv3dg.config import deep_merge, from_dict, merge_overrides
from tv3dg.errors import UserError
from tv3dg.pipeline.config import GenerateConfig, build_config, preset_data
from tv3dg.pipeline.run import image_background
from tv3dg.priors.images import read_image

MAX_PROMPT_CHARS = 1000  # far above any useful prompt; the CLIP text encoder reads 77 tokens


@dataclass(frozen=True)
class AppSettings:
    """Fixed at launch: the preset, the command line's config data (model paths and `key=value`
    overrides, applied to every run), where runs go, the upload folder visual prompts must come
    from, and how many runs are kept. The browser never sets model paths."""

    preset: str | None
    launch_data: dict
    runs: Path
    max_steps: int
    uploads: Path
    retention: Retention = field(default_factory=Retention)

    @classmethod
    def from_command_line(
        cls, preset: str | None, paths: dict[str, str | None], overrides: list[str], runs: Path, max_steps: int,
        uploads: Path, retention: Retention = Retention(),
    ) -> "AppSettings":
        """`paths`: the prior's weight paths (model, ip_adapter, image_encoder), None where not given."""
        prior = {k: v for k, v in paths.items() if v is not None}
        settings = cls(preset, merge_overrides({"prior": prior} if prior else {}, overrides), runs, max_steps,
                       uploads, retention)
        settings.defaults()  # a misspelt key or a bad value fails at launch, not on the first run
        if max_steps < 1:
            raise UserError(f"--max-steps must be at least 1, got {max_steps}")
        return settings

    def defaults(self) -> GenerateConfig:
        """The resolved config the page starts from: preset <- command line (strict keys)."""
        return from_dict(GenerateConfig, deep_merge(preset_data(self.preset), self.launch_data))


@dataclass(frozen=True)
class PageInputs:
    """One request from the page or the API; `None` leaves the launch config's value."""

    prompt: str
    image: str | None
    mode: str
    loss: str
    steps: float
    seed: float
    cfg_scale: float | None = None
    pag_scale: float | None = None
    ip_scale: float | None = None
    sgc: bool | None = None

    def updates(self) -> dict:
        """Config data for `build_config`, the same shape `tv3dg generate`'s flags produce."""
        updates: dict = {"prompt": self.prompt or "", "image": self.image or None,
                         "steps": _whole(self.steps), "seed": _whole(self.seed),
                         "prior": {"ip_mode": self.mode}, "distill": {"loss": self.loss}}
        for section, key, value in (("distill", "cfg_scale", self.cfg_scale), ("distill", "pag_scale", self.pag_scale),
                                    ("prior", "ip_scale", self.ip_scale), ("sgc", "enabled", self.sgc)):
            if value is not None:
                updates.setdefault(section, {})[key] = value
        return updates


def config_for(settings: AppSettings, inputs: PageInputs) -> GenerateConfig:
    """The run's config, or `UserError` with the command line's message; the visual prompt is read
    here, before any folder exists, by the reader `generate` itself uses, and only from an upload."""
    if len(inputs.prompt or "") > MAX_PROMPT_CHARS:
        raise UserError(f"the prompt is {len(inputs.prompt)} characters long; this app takes at most "
                        f"{MAX_PROMPT_CHARS}: shorten it")
    if inputs.image:
        inputs = replace(inputs, image=str(uploaded_file(inputs.image, settings.uploads)))
    config = build_config(settings.preset, deep_merge(settings.launch_data, inputs.updates()), [])
    if config.steps > settings.max_steps:
        raise UserError(f"steps {config.steps} is above this app's limit of {settings.max_steps}; "
                        "lower steps or start the app with a higher --max-steps")
    if config.image:
        read_image(config.image, image_background(config))
    return config


def _whole(value: float | int | None) -> int | float | None:
    """Numbers from a web form arrive as floats; a whole float is the int the config expects."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
