"""Finding the world's eyes by their structure: a dark pupil inside a ring of eye white.

The Janus reading asks of each view whether it shows a front. The attribute classifier learnt that
from clean renders, and on distilled assets, which are blurred, mottled and haloed, it reads eyes
into texture: on a hand-labelled set of such views where a person sees no eye it read eyes on more
than half (`benchmarks/janus_labels.py`), and heavier augmentation in its training did not cure
it. This finder reads no texture: a view shows an eye only where a dark pupil sits inside a ring
of light, colourless pixels, which the world's colours, patterns and background never make. One
eye is enough: the prior often draws a smeared eye or two merged into one, and any eye on a back
is a front drawn where none belongs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LIGHT_MIN = 0.5
"""An eye white's brightness (mean of RGB). Lit from the front it is about 0.67; the bodies of
the world's colours are darker, except where a shiny highlight falls."""
CHROMA_MAX = 0.15
"""An eye white is grey: its channels differ by less than this (the world's colours differ by more)."""
BACKGROUND_MIN = 0.995
"""Brighter than this is the white background, not an eye."""
PUPIL_MAX = 0.25
"""A pupil's brightness at most (about 0.04 when rendered)."""
RING_RADII = (1.5, 2.6)
"""The ring around a pupil, in pixels at 64 px: the eye's radius is about 3.2 px on a regular
object and 2.3 px on a small one, the pupil's 1.5 and 1."""
RING_WHITE_MIN = 8
"""At least this many of the ring's 12 pixels are eye white. With 6 (half), the grey haze around a
distilled asset's dark edge passes for a ring; with 8 it does not, and 92% of clean fronts still
show an eye."""
IMAGE_SIZE = 64


def _ring_kernel() -> Tensor:
    size = 2 * int(RING_RADII[1]) + 1
    offsets = torch.arange(size) - size // 2
    distance = (offsets[:, None].float() ** 2 + offsets[None, :].float() ** 2).sqrt()
    return ((distance >= RING_RADII[0]) & (distance <= RING_RADII[1])).float()[None, None]


def pupils(rgb: Tensor) -> Tensor:
    """[B, H, W] bool: dark pixels ringed by eye white, in views [B, 3, H, W] in [0, 1] at 64 px."""
    if rgb.shape[-1] != IMAGE_SIZE or rgb.shape[-2] != IMAGE_SIZE:
        raise ValueError(f"the eye finder reads {IMAGE_SIZE}-px views, got {tuple(rgb.shape[-2:])}")
    brightness = rgb.mean(1, keepdim=True)
    chroma = rgb.amax(1, keepdim=True) - rgb.amin(1, keepdim=True)
    white = ((chroma < CHROMA_MAX) & (brightness > LIGHT_MIN) & (brightness < BACKGROUND_MIN)).float()
    kernel = _ring_kernel()
    ringed = F.conv2d(white, kernel, padding=kernel.shape[-1] // 2) >= RING_WHITE_MIN
    return ((brightness < PUPIL_MAX) & ringed)[:, 0]


def eyes_seen(rgb: Tensor) -> Tensor:
    """[B] bool: the view [B, 3, 64, 64] shows at least one eye."""
    return pupils(rgb).flatten(1).any(1)
