"""Multi-faced (Janus) assets: a front seen from behind.

In a world whose objects have a front (the mini world's eyes), an asset shows its front in a view from
behind only if the generator drew one there: the best-known failure of score distillation from
a camera-blind prior such as SD-1.5. A reader (the world's classifier) says, per rendered view,
whether the front is visible; these functions turn that into rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

BACK_VIEW_DEG = 120.0
"""A view is 'from behind' when its camera is more than this far (in azimuth) from the front."""
MULTI_FACED_VIEWS = 2
"""An asset is multi-faced when at least this many of its back views show a front."""


def back_views(azimuth_deg: Tensor) -> Tensor:
    """[V] bool: cameras beyond +-120 deg of the front (azimuth 0)."""
    wrapped = torch.remainder(azimuth_deg.float() + 180.0, 360.0) - 180.0
    return wrapped.abs() > BACK_VIEW_DEG


@dataclass(frozen=True)
class JanusReading:
    back_views: int  # views from behind that were read
    fronts_from_behind: int  # of those, views where the front was read as visible

    @property
    def janus_rate(self) -> float:
        return self.fronts_from_behind / self.back_views if self.back_views else float("nan")

    @property
    def multi_faced(self) -> bool:
        return self.fronts_from_behind >= MULTI_FACED_VIEWS

    def as_dict(self) -> dict:
        return {"back_views": self.back_views, "fronts_from_behind": self.fronts_from_behind,
                "janus_rate": self.janus_rate, "multi_faced": self.multi_faced}


def read_janus(front_visible: list[bool], azimuth_deg: Tensor) -> JanusReading:
    """How many back views (of views at `azimuth_deg`) show a front, by the reader's verdicts."""
    if len(front_visible) != len(azimuth_deg):
        raise ValueError(f"{len(front_visible)} readings for {len(azimuth_deg)} views")
    behind = back_views(azimuth_deg).tolist()
    return JanusReading(sum(behind), sum(v and b for v, b in zip(front_visible, behind)))


def multi_faced_share(readings: list[JanusReading]) -> float:
    """Share of assets with at least MULTI_FACED_VIEWS fronts seen from behind."""
    return sum(r.multi_faced for r in readings) / len(readings) if readings else float("nan")
