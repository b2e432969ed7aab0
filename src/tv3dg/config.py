"""Typed configs: dataclasses, strict YAML keys, `key=value` overrides and scalar schedules.

Every component owns a dataclass. `from_dict` builds one from plain data and rejects unknown
keys (a typo is an error, never silently ignored). Any float field typed `Schedule` accepts a
constant or `[start_step, start_value, end_value, end_step]`, evaluated with `schedule_value`.
Every field carries its meaning as an attribute docstring, the string literal on the line after
it; `field_descriptions` reads them for the generated configuration reference.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from tv3dg.errors import UserError

Schedule = Union[float, list]
"""A constant, or `[start_step, start_value, end_value, end_step]`: linear between the steps."""

T = TypeVar("T")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 scalars: `1e-9` is a number (YAML 1.1 wants `1.0e-9`)
    and only true/false are booleans (YAML 1.1 also reads yes/no/on/off, so `prompt=no` would
    not be text). Config files and `key=value` overrides are read with it alike."""


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))


def load_yaml(text: str) -> Any:
    """Parse YAML text with the project's rules (see `_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def schedule_value(value: Schedule, step: int) -> float:
    """Evaluate a schedule at `step` (constant before start_step and after end_step)."""
    if isinstance(value, (int, float)):
        return float(value)
    start_step, start_value, end_value, end_step = value
    if step <= start_step:
        return float(start_value)
    if step >= end_step:
        return float(end_value)
    frac = (step - start_step) / max(end_step - start_step, 1)
    return float(start_value + frac * (end_value - start_value))


def _check_schedule(value: Any, where: str) -> Schedule:
    if isinstance(value, bool):
        raise UserError(f"config key '{where}' must be a number or a schedule, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)) and len(value) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return [int(value[0]), float(value[1]), float(value[2]), int(value[3])]
    raise UserError(
        f"config key '{where}' must be a number or [start_step, start_value, end_value, end_step], got {value!r}"
    )


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Convert plain YAML data to the annotated type, with a clear error when it does not fit."""
    if tp is Schedule or tp == "Schedule":
        return _check_schedule(value, where)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"config key '{where}' must be a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{where}.")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except UserError as err:
                errors.append(str(err))
        raise UserError(errors[0] if errors else f"config key '{where}' has an invalid value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{where}' must be a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is typing.Literal:
        if value not in args:
            raise UserError(f"config key '{where}' must be one of {list(args)}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key '{where}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"config key '{where}' must be true or false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config key '{where}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config key '{where}' must be an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"config key '{where}' must be a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass `cls` from `data`, rejecting unknown keys and ill-typed values."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(
            f"unknown config key '{prefix}{unknown[0]}'; valid keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {name: _coerce(hints[name], value, f"{prefix}{name}") for name, value in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Plain-data view of a config (for config.yaml): dataclasses become dicts, tuples lists."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `a.b.c=value` (value read as YAML, so `0.5`, `1e-9`, `true`, `[0, 1, 2, 3]` work)."""
    if "=" not in text:
        raise UserError(f"override '{text}' is not of the form key=value (e.g. steps=200)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise UserError(f"override '{text}' has an empty key; write it as key=value")
    try:
        value = load_yaml(raw)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or type(err).__name__
        raise UserError(f"override '{text}' has a value that is not valid YAML ({problem}); quote text values") from None
    return key.split("."), value


def merge_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `key=value` overrides to nested plain data (strictness is checked by `from_dict`)."""
    merged = _deep_copy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserError(f"override '{text}': '{part}' is not a section of the config")
            node = child
        node[path[-1]] = value
    return merged


def deep_merge(base: dict, update: dict) -> dict:
    """Recursively merge `update` into a copy of `base` (preset files layered on defaults)."""
    merged = _deep_copy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with a one-line error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file '{path}' does not exist; pass an existing .yaml file")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"config file '{path}' is not valid YAML ({type(err).__name__}); fix its syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file '{path}' must hold a mapping of keys to values")
    return data


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(to_dict(data), sort_keys=False)


def field_descriptions(cls: type) -> dict[str, str]:
    """The attribute docstring of each field of dataclass `cls` that has one, as one line.

    Read from the source (a docstring after a field is not kept at run time), so the reference
    and the code cannot disagree."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    descriptions = {}
    for node, following in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            descriptions[node.target.id] = " ".join(inspect.cleandoc(following.value.value).split())
    return descriptions
