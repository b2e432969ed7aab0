"""Limits on guidance scales, checked where a scale enters (configs, sampling) with one-line errors."""

from __future__ import annotations

from tv3dg.errors import UserError

MAX_GUIDANCE = 200.0


def check_scale(name: str, value: float, low: float = 0.0, high: float = MAX_GUIDANCE, allow_low: bool = False) -> None:
    """Reject a guidance scale outside (low, high] ([low, high] with allow_low)."""
    if not (low <= value <= high) or (value == low and not allow_low):
        bracket = "[" if allow_low else "("
        raise UserError(f"{name} {value} is out of range; it must lie in {bracket}{low:g}, {high:g}]")
