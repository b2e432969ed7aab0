"""Strict typed configs: typos and ill-typed values are errors, schedules evaluate linearly."""

from dataclasses import dataclass, field

import pytest

from tv3dg.config import Schedule, from_dict, merge_overrides, parse_override, schedule_value, to_dict
from tv3dg.errors import UserError


@dataclass
class Inner:
    weight: Schedule = 1.0
    name: str = "a"


@dataclass
class Outer:
    steps: int = 10
    inner: Inner = field(default_factory=Inner)
    ranges: tuple[float, float] = (0.0, 1.0)


def test_unknown_key_is_rejected_with_its_full_name():
    with pytest.raises(UserError, match="unknown config key 'inner.wieght'"):
        from_dict(Outer, {"inner": {"wieght": 2.0}})


def test_ill_typed_values_are_rejected():
    with pytest.raises(UserError, match="'steps' must be an integer"):
        from_dict(Outer, {"steps": "ten"})
    with pytest.raises(UserError, match="inner.weight"):
        from_dict(Outer, {"inner": {"weight": [1, 2]}})


def test_schedule_is_linear_between_its_steps_and_constant_outside():
    sched = [100, 1.0, 0.0, 200]
    assert schedule_value(sched, 0) == 1.0
    assert schedule_value(sched, 150) == pytest.approx(0.5)
    assert schedule_value(sched, 1000) == 0.0
    assert schedule_value(0.25, 7) == 0.25


def test_overrides_parse_yaml_values_and_round_trip():
    data = merge_overrides({}, ["steps=20", "inner.weight=[0, 1.0, 0.5, 10]", "ranges=[0.1, 0.9]"])
    cfg = from_dict(Outer, data)
    assert cfg.steps == 20 and cfg.inner.weight == [0, 1.0, 0.5, 10] and cfg.ranges == (0.1, 0.9)
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_values_are_read_as_yaml_1_2_scalars():
    """YAML 1.1 reads `1e-9` as text and `no` as false; configs and overrides read them as a user means them."""
    values = [parse_override(f"k={raw}")[1] for raw in ("1e-9", "-2E3", ".5", "no", "on", "true", "[1e-3, 2]")]
    assert values == [1e-9, -2000.0, 0.5, "no", "on", True, [1e-3, 2]]
    assert from_dict(Outer, merge_overrides({}, ["inner.weight=1e-9"])).inner.weight == 1e-9


def test_override_without_equals_sign_is_an_error():
    with pytest.raises(UserError, match="key=value"):
        merge_overrides({}, ["steps"])
