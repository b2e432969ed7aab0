"""Finding the world's eyes by their structure: a dark pupil inside a ring of eye white.

The Janus reading asks of each view whether it shows a front. The attribute classifier learnt that
from clean renders, and on distilled assets, which are blurred, mottled and haloed, it reads eyes
into texture: on a hand-labelled set of such views where a person sees no eye it read eyes on more
than half (`benchmarks/janus_labels.py`), and heavier augmentation in its training did not cure
it. This finder reads no texture. An eye is a pupil darker than nearly all of the ring around it,
a ring lighter than the body around it and either paler (less colourful) than the body or
clearly lighter, all on the object, not at its edge against the background. One eye is enough:
the prior often draws a smear or a single eye, and any eye on a back is a front drawn there.

Everything is relative to the neighbourhood, so a soft eye on a splat still counts; the
thresholds were set on clean renders, Gaussians fitted to true objects and distilled assets
without eyes (`benchmarks/splat_fit_eye_probe.py`, `benchmarks/janus_labels.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tv3dg.priors.mini.architecture import IMAGE_SIZE


@dataclass(frozen=True)
class EyeThresholds:
    """How much darker a pupil, how much lighter or paler its ring; one set is shipped (`EYES`),
    others are tried by `benchmarks/janus_labels.py sweep` against a person's labels."""

    pupil_contrast: float = 0.1
    """A ring pixel is lighter than the pupil (the mean of the centre pixel and its 4 neighbours) by this,"""
    ring_lighter_min: int = 11
    """... and at least this many of the ring's 12 pixels (1.5-2.6 px from the centre) are."""
    paler_by: float = 0.05
    """The ring's mean chroma (max - min of RGB) is below the body's (the ring 3.5-4.7 px out) by this,"""
    lighter_by: float = 0.12
    """or the ring's brightness is above the body's by this (an eye on a grey body is not paler)."""
    background_min: float = 0.97
    """A pixel this bright is background; at most 2 of the body ring's 32 pixels may be."""


EYES = EyeThresholds()


def _ring(inner: float, outer: float) -> list[tuple[int, int]]:
    reach = int(outer) + 1
    return [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)
            if inner <= (dy * dy + dx * dx) ** 0.5 <= outer]


CENTRE, RING, BODY = _ring(0.0, 1.0), _ring(1.5, 2.6), _ring(3.5, 4.7)


def _at(image: Tensor, offset: tuple[int, int]) -> Tensor:
    """[B, H, W]: each pixel's neighbour at `offset` (the views' borders are background)."""
    return torch.roll(image, shifts=(-offset[0], -offset[1]), dims=(-2, -1))


def _mean(image: Tensor, offsets: list[tuple[int, int]]) -> Tensor:
    return sum(_at(image, o) for o in offsets) / len(offsets)


def pupils(rgb: Tensor, thresholds: EyeThresholds = EYES) -> Tensor:
    """[B, H, W] bool: pixels that are the pupil of an eye, in views [B, 3, H, W] in [0, 1] at 64 px."""
    if rgb.shape[-1] != IMAGE_SIZE or rgb.shape[-2] != IMAGE_SIZE:
        raise ValueError(f"the eye finder reads {IMAGE_SIZE}-px views, got {tuple(rgb.shape[-2:])}")
    brightness = rgb.mean(1)
    chroma = rgb.amax(1) - rgb.amin(1)
    centre = _mean(brightness, CENTRE)
    ringed = sum((_at(brightness, o) > centre + thresholds.pupil_contrast).float() for o in RING) >= thresholds.ring_lighter_min
    ring_light, body_light = _mean(brightness, RING), _mean(brightness, BODY)
    paler = _mean(chroma, RING) <= _mean(chroma, BODY) - thresholds.paler_by
    white = (ring_light > body_light) & (paler | (ring_light >= body_light + thresholds.lighter_by))
    on_object = sum((_at(brightness, o) >= thresholds.background_min).float() for o in BODY) <= 2
    return ringed & white & on_object


def eyes_seen(rgb: Tensor, thresholds: EyeThresholds = EYES) -> Tensor:
    """[B] bool: the view [B, 3, 64, 64] shows at least one eye."""
    return pupils(rgb, thresholds).flatten(1).any(1)
