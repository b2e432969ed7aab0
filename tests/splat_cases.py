"""Shared by the format tests: random Gaussians inside every format's range, and the largest error
each format's quantisation allows per attribute."""

import math

import torch

from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.sh import SH_C0

COLOUR_STEP = {"compressed.ply": None, "spz": 1 / (0.15 * 255), "splat": 1 / (255 * SH_C0)}  # DC steps (None: per chunk)


def in_range_gaussians(n: int, degree: int, seed: int = 0) -> Gaussians:
    """Random Gaussians inside every format's range (spz: |dc| < 3.3, |sh rest| < 1; splat: colour in [0, 1])."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=gen)

    return Gaussians(
        means=uniform((n, 3), -1, 1), log_scales=uniform((n, 3), -6, -2), quats=torch.randn(n, 4, generator=gen),
        opacity_logits=2 * torch.randn(n, 1, generator=gen), sh_dc=uniform((n, 1, 3), -1.5, 1.5),
        sh_rest=uniform((n, (degree + 1) ** 2 - 1, 3), -0.9, 0.9),
    )


def tolerances(name: str, g: Gaussians) -> dict[str, float]:
    """Largest error per attribute that the format's quantisation allows (a whole step: rounding
    gives half a step, the rest covers float32 arithmetic in the encoders)."""
    g = g.requires_grad_(False)
    extent = float((g.means.max(0).values - g.means.min(0).values).max())
    scale_extent = float((g.log_scales.max(0).values - g.log_scales.min(0).values).max())
    colour_extent = float(SH_C0 * (g.sh_dc.max() - g.sh_dc.min()))
    exact = {"means": 1e-7, "log_scales": 2e-6, "opacity": 1e-6, "rotation": 1e-6, "sh_dc": 1e-6, "sh_rest": 1e-6}
    return {
        "ply": {k: 0.0 for k in exact},
        "glb": exact,
        # per chunk of 256: 11 or 10 bits of the chunk's range (bounded by the whole asset's range)
        "compressed.ply": {"means": extent / 1023, "log_scales": scale_extent / 1023, "opacity": 1 / 255,
                           "rotation": math.sqrt(2) / 1023 * 2, "sh_dc": colour_extent / 255 / SH_C0, "sh_rest": 8 / 256},
        "spz": {"means": 1 / 4096, "log_scales": 1 / 16, "opacity": 1 / 255, "rotation": math.sqrt(2) / 511 * 2,
                "sh_dc": COLOUR_STEP["spz"], "sh_rest": 1 / 128},
        "splat": {"means": 1e-7, "log_scales": 2e-6, "opacity": 1 / 255, "rotation": 2 / 128,
                  "sh_dc": COLOUR_STEP["splat"], "sh_rest": 0.0},
    }[name]


def errors(g: Gaussians, back: Gaussians) -> dict[str, float]:
    with torch.no_grad():
        q, r = g.rotations, back.rotations
        sign = torch.sign((q * r).sum(1, keepdim=True))  # q and -q are the same rotation
        rest = back.sh_rest.shape[1]
        return {
            "means": float((g.means - back.means).abs().max()),
            "log_scales": float((g.log_scales - back.log_scales).abs().max()),
            "opacity": float((g.opacities - back.opacities).abs().max()),
            "rotation": float((q - sign * r).abs().max()),
            "sh_dc": float((g.sh_dc - back.sh_dc).abs().max()),
            "sh_rest": float((g.sh_rest[:, :rest] - back.sh_rest).abs().max()) if rest else 0.0,
        }
