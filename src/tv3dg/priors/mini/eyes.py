"""Finding the world's eyes by their structure: two light discs, each with a dark pupil, side by side.

The Janus reading asks of each view whether it shows a front. The attribute classifier learnt that
from clean renders, and on distilled assets, which are blurred, mottled and haloed, it reads eyes
into texture: on a hand-labelled set of such views where a person sees no eye it read eyes on more
than half (`benchmarks/janus_labels.py`), and heavier augmentation in its training did not cure
it. This finder reads no texture: a view shows eyes only where a dark pupil sits inside a ring of
light, colourless pixels, and another such pupil sits beside it at the spacing of a pair of eyes.
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
RING_LIGHT_MIN = 0.5
"""At least this share of the ring is eye white."""
PAIR_DX = (4, 14)
"""Horizontal distance between two pupils of a pair, in pixels at 64 px (about 10 on a regular
object seen from the front, 7 on a small one, less when turned)."""
PAIR_DY = 2
"""Two pupils of a pair are level to within this many pixels."""
IMAGE_SIZE = 64


def _ring_kernel() -> Tensor:
    size = 2 * int(RING_RADII[1]) + 1
    offsets = torch.arange(size) - size // 2
    distance = (offsets[:, None].float() ** 2 + offsets[None, :].float() ** 2).sqrt()
    ring = ((distance >= RING_RADII[0]) & (distance <= RING_RADII[1])).float()
    return (ring / ring.sum())[None, None]


def pupils(rgb: Tensor) -> Tensor:
    """[B, H, W] bool: dark pixels ringed by eye white, in views [B, 3, H, W] in [0, 1] at 64 px."""
    if rgb.shape[-1] != IMAGE_SIZE or rgb.shape[-2] != IMAGE_SIZE:
        raise ValueError(f"the eye finder reads {IMAGE_SIZE}-px views, got {tuple(rgb.shape[-2:])}")
    brightness = rgb.mean(1, keepdim=True)
    chroma = rgb.amax(1, keepdim=True) - rgb.amin(1, keepdim=True)
    white = ((chroma < CHROMA_MAX) & (brightness > LIGHT_MIN) & (brightness < BACKGROUND_MIN)).float()
    kernel = _ring_kernel()
    ringed = F.conv2d(white, kernel, padding=kernel.shape[-1] // 2) >= RING_LIGHT_MIN
    return ((brightness < PUPIL_MAX) & ringed)[:, 0]


def eyes_seen(rgb: Tensor) -> Tensor:
    """[B] bool: the view [B, 3, 64, 64] shows a pair of eyes (two pupils, level, an eye spacing apart)."""
    found = pupils(rgb)
    height, width = found.shape[1:]
    seen = torch.zeros(len(rgb), dtype=torch.bool)
    for dx in range(PAIR_DX[0], PAIR_DX[1] + 1):
        for dy in range(-PAIR_DY, PAIR_DY + 1):
            left = found[:, max(0, dy):height + min(0, dy), :width - dx]
            right = found[:, max(0, -dy):height + min(0, -dy), dx:]
            seen |= (left & right).flatten(1).any(1)
    return seen
