"""Real spherical harmonics of degree 0..3 in the basis and sign convention of 3DGS `.ply` files.

Colours are stored as SH coefficients; the colour seen from direction `d` is
`clamp(sum_k Y_k(d) * c_k + 0.5, min=0)`. Using the same basis as the Inria layout is what makes
`.ply` files from other tools render with the right view-dependent colour.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MAX_SH_DEGREE = 3

# Normalisation constants of the real SH basis, band by band.
SH_C0 = 0.5 / math.sqrt(math.pi)
SH_C1 = math.sqrt(3.0 / (4.0 * math.pi))
SH_C2 = (
    0.5 * math.sqrt(15.0 / math.pi),
    -0.5 * math.sqrt(15.0 / math.pi),
    0.25 * math.sqrt(5.0 / math.pi),
    -0.5 * math.sqrt(15.0 / math.pi),
    0.25 * math.sqrt(15.0 / math.pi),
)
SH_C3 = (
    -0.25 * math.sqrt(35.0 / (2.0 * math.pi)),
    0.5 * math.sqrt(105.0 / math.pi),
    -0.25 * math.sqrt(21.0 / (2.0 * math.pi)),
    0.25 * math.sqrt(7.0 / math.pi),
    -0.25 * math.sqrt(21.0 / (2.0 * math.pi)),
    0.25 * math.sqrt(105.0 / math.pi),
    -0.25 * math.sqrt(35.0 / (2.0 * math.pi)),
)


def num_sh_coeffs(degree: int) -> int:
    """Coefficients per colour channel for SH of `degree`: (degree + 1)^2."""
    return (degree + 1) ** 2


def sh_degree_from_coeffs(count: int) -> int:
    """Inverse of `num_sh_coeffs`; raises ValueError when `count` is not a square of 1..4."""
    for degree in range(MAX_SH_DEGREE + 1):
        if num_sh_coeffs(degree) == count:
            return degree
    raise ValueError(f"{count} SH coefficients per channel is not (degree+1)^2 for a degree in 0..{MAX_SH_DEGREE}")


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:
    """The DC coefficient that renders as `rgb` from every direction."""
    return (rgb - 0.5) / SH_C0


def sh_dc_to_rgb(dc: Tensor) -> Tensor:
    return dc * SH_C0 + 0.5


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """Basis values [..., (degree+1)^2] at unit directions `dirs` [..., 3]."""
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ValueError(f"SH degree must be in 0..{MAX_SH_DEGREE}, got {degree}")
    x, y, z = dirs.unbind(-1)
    values = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        values += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        xy, yz, xz = x * y, y * z, x * z
        values += [
            SH_C2[0] * xy,
            SH_C2[1] * yz,
            SH_C2[2] * (2.0 * zz - xx - yy),
            SH_C2[3] * xz,
            SH_C2[4] * (xx - yy),
        ]
    if degree >= 3:
        values += [
            SH_C3[0] * y * (3.0 * xx - yy),
            SH_C3[1] * xy * z,
            SH_C3[2] * y * (4.0 * zz - xx - yy),
            SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            SH_C3[4] * x * (4.0 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(values, dim=-1)


def eval_sh(degree: int, coeffs: Tensor, dirs: Tensor) -> Tensor:
    """Colour [..., 3] from coefficients [..., K, 3] (K >= (degree+1)^2) at directions [..., 3].

    Only the first (degree+1)^2 coefficients are used, so a lower active degree than the stored
    one is allowed. `dirs` need not be normalised. Returns `max(sum + 0.5, 0)`.
    """
    count = num_sh_coeffs(degree)
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    basis = sh_basis(degree, dirs)  # [..., count]
    rgb = (basis.unsqueeze(-1) * coeffs[..., :count, :]).sum(dim=-2)
    return torch.clamp_min(rgb + 0.5, 0.0)
