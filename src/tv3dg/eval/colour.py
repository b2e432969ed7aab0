"""Oversaturation: how far an asset's colours are from the true colour of what the prompt names.

Score distillation at high guidance pushes colours past the prior's own (washed-out greys,
neon hues). Where ground truth exists (the mini world renders the prompt's object exactly), the
asset's views are compared with the true object's views from the same cameras, over the
pixels each covers: the distance of the mean colours, and how much more saturated the asset is.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

COVERED = 0.5
"""A pixel belongs to an object where its alpha exceeds this."""


def _mean_colour(rgb: Tensor, alpha: Tensor) -> Tensor:
    """[V, 3] mean colour over the covered pixels of each view (rgb [V,3,H,W], alpha [V,1,H,W])."""
    mask = (alpha > COVERED).float()
    return (rgb * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp(min=1.0)


def _saturation(rgb: Tensor, alpha: Tensor) -> Tensor:
    """[V] mean HSV saturation over the covered pixels of each view."""
    mask = (alpha > COVERED).float()[:, 0]
    high, low = rgb.max(dim=1).values, rgb.min(dim=1).values
    saturation = (high - low) / high.clamp(min=1e-3)
    return (saturation * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp(min=1.0)


@dataclass(frozen=True)
class ColourReading:
    colour_error: float  # mean over views of |mean colour - true mean colour| (RGB in [0, 1], max sqrt 3)
    saturation_excess: float  # asset saturation minus the truth's: > 0 oversaturated, < 0 washed out

    def as_dict(self) -> dict:
        return {"colour_error": self.colour_error, "saturation_excess": self.saturation_excess}


def read_colour(rgb: Tensor, alpha: Tensor, true_rgb: Tensor, true_alpha: Tensor) -> ColourReading:
    """Compare views [V,3,H,W] (+ alpha [V,1,H,W]) of an asset with the true object's, same cameras."""
    error = (_mean_colour(rgb, alpha) - _mean_colour(true_rgb, true_alpha)).norm(dim=-1).mean()
    excess = (_saturation(rgb, alpha) - _saturation(true_rgb, true_alpha)).mean()
    return ColourReading(float(error), float(excess))
