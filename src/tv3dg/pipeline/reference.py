"""The configuration reference: every key of `GenerateConfig` with its type, its value in each
preset and its meaning, read from the config dataclasses (the documentation site renders it)."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

import yaml

from tv3dg.config import Schedule, field_descriptions, from_dict
from tv3dg.pipeline.config import PRESETS, GenerateConfig, preset_data


@dataclass(frozen=True)
class ConfigKey:
    """One leaf key, e.g. `distill.cfg_scale`."""

    key: str
    type: str
    description: str | None
    values: dict[str, Any]  # preset name -> resolved value


@dataclass(frozen=True)
class ConfigSection:
    """The keys of one config dataclass (`""` is the top level)."""

    name: str
    summary: str
    keys: list[ConfigKey]


def type_name(tp: Any) -> str:
    """A reader's name for an annotated type: `number or schedule`, `one of a, b`, `int or null`."""
    if tp is Schedule:
        return "number or schedule"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin in (list, tuple):
        return "[" + ", ".join(type_name(a) for a in args if a is not Ellipsis) + (", ...]" if origin is list else "]")
    return getattr(tp, "__name__", str(tp))


def _section_classes(cls: type, prefix: str = "") -> list[tuple[str, type]]:
    """(`prefix`, dataclass) for `cls` and every nested config dataclass, depth first."""
    found = [(prefix, cls)]
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[field.name]):
            found += _section_classes(hints[field.name], f"{prefix}{field.name}.")
    return found


def _value(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def preset_configs() -> dict[str, GenerateConfig]:
    """Each shipped preset, resolved on the defaults (no prompt needed)."""
    return {name: from_dict(GenerateConfig, preset_data(name)) for name in PRESETS}


def config_sections() -> list[ConfigSection]:
    """Every section of `GenerateConfig` with its leaf keys, in declaration order."""
    presets = preset_configs()
    sections = []
    for prefix, cls in _section_classes(GenerateConfig):
        hints = typing.get_type_hints(cls)
        described = field_descriptions(cls)
        keys = [
            ConfigKey(
                key=f"{prefix}{field.name}",
                type=type_name(hints[field.name]),
                description=described.get(field.name),
                values={name: _value(config, f"{prefix}{field.name}") for name, config in presets.items()},
            )
            for field in dataclasses.fields(cls)
            if not dataclasses.is_dataclass(hints[field.name])
        ]
        summary = " ".join((cls.__doc__ or "").split())
        sections.append(ConfigSection(prefix.rstrip("."), summary, keys))
    return sections


def preset_keys(data: dict, prefix: str = "") -> list[str]:
    """The dotted leaf keys a preset's plain data sets."""
    keys = []
    for name, value in data.items():
        if isinstance(value, dict):
            keys += preset_keys(value, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip().replace("|", "\\|")


def config_reference_markdown() -> str:
    """The configuration reference page: one table per section."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the typed config classes when the site is built: every key, its type, its value in",
        "each preset (`" + "`, `".join(PRESETS) + "`) and its meaning. Set any key with `key=value` on the",
        "command line or in a YAML file passed with `--config`; a misspelt key is an error. A",
        "*schedule* is `[start_step, start_value, end_value, end_step]`, linear in between.",
        "",
    ]
    for section in config_sections():
        lines += [f"## `{section.name}`" if section.name else "## Top level", "", section.summary, ""]
        lines += ["| key | type | " + " | ".join(PRESETS) + " | meaning |", "|---|---|" + "---|" * len(PRESETS) + "---|"]
        for key in section.keys:
            values = " | ".join(f"`{_show(key.values[name])}`" for name in PRESETS)
            type_text = key.type.replace("|", "\\|")
            lines.append(f"| `{key.key}` | {type_text} | {values} | {key.description or ''} |")
        lines.append("")
    return "\n".join(lines)
