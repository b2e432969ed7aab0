"""View-dependent prompts: "<prompt>, front view" etc., from the camera's elevation and azimuth."""

from __future__ import annotations

from tv3dg.render.cameras import Cameras, view_direction


def view_prompt(prompt: str, direction: str) -> str:
    return f"{prompt}, {direction} view"


def view_dependent_prompts(prompt: str, cameras: Cameras) -> list[str]:
    """One prompt per camera naming its view (front / side / back / overhead)."""
    directions = view_direction(cameras.elevation_deg.cpu(), cameras.azimuth_deg.cpu())
    return [view_prompt(prompt, direction) for direction in directions]
