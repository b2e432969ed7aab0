"""3DGS `.ply` files in the Inria layout, the format every Gaussian-splatting viewer reads.

One `vertex` element with float properties, in this order:
`x y z nx ny nz f_dc_0..2 f_rest_0..M-1 opacity scale_0..2 rot_0..3`, where opacity is a
logit, scales are logs, `rot` is an unnormalised (w, x, y, z) quaternion and M = 3 * ((D+1)^2 - 1)
for SH degree D. `f_rest` is channel-major: all red coefficients, then green, then blue.

Reading is lenient about what other tools add or leave out (property order, extra properties,
missing normals, double or half precision, ascii or either endianness) and strict about what a
3DGS file must have; anything else is a `UserError` that says what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from tv3dg.atomic import atomic_path
from tv3dg.errors import UserError
from tv3dg.gaussians.arrays import SplatArrays
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.sh import MAX_SH_DEGREE, num_sh_coeffs

REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3"]


def save_ply(path: str | Path, gaussians: Gaussians) -> None:
    """Write `gaussians` (all SH bands, whatever the active degree) atomically as binary little-endian."""
    n = gaussians.num_points
    rest = gaussians.sh_rest.shape[1]
    with torch.no_grad():
        columns = [
            gaussians.means,
            torch.zeros_like(gaussians.means),  # normals: unused by 3DGS, kept for compatibility
            gaussians.sh_dc.reshape(n, 3),
            gaussians.sh_rest.transpose(1, 2).reshape(n, 3 * rest),
            gaussians.opacity_logits,
            gaussians.log_scales,
            gaussians.quats,
        ]
        data = torch.cat([c.detach().float().cpu() for c in columns], dim=1).numpy()
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * rest)]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    vertex = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        vertex[name] = data[:, i]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(tmp))


def load_ply(path: str | Path) -> Gaussians:
    """Read a 3DGS `.ply` of any SH degree 0..3; the active SH degree is set to the stored one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"'{path}' does not exist; pass the path of a 3DGS .ply file")
    try:
        ply = PlyData.read(str(path))
    except Exception as err:  # plyfile raises several types for malformed input
        raise UserError(f"'{path}' is not a readable .ply file ({_reason(err)}); pass a 3DGS .ply") from None
    if "vertex" not in ply:
        raise UserError(f"'{path}' has no 'vertex' element, so it is not a 3DGS .ply")
    vertex = ply["vertex"].data
    present = set(vertex.dtype.names or ())
    missing = [name for name in REQUIRED if name not in present]
    if missing:
        raise UserError(
            f"'{path}' is not a 3DGS .ply: it lacks {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} "
            "(a mesh or point cloud?); export Gaussians in the Inria 3DGS layout"
        )
    n = len(vertex)
    rest_names = sorted((name for name in present if name.startswith("f_rest_")), key=lambda s: int(s[7:]))
    degree = _sh_degree(path, rest_names)

    def column(names: list[str]) -> np.ndarray:
        return np.stack([np.asarray(vertex[name], dtype=np.float32) for name in names], axis=1) if names else np.zeros((n, 0), np.float32)

    return SplatArrays(
        means=column(["x", "y", "z"]),
        log_scales=column(["scale_0", "scale_1", "scale_2"]),
        quats=column(["rot_0", "rot_1", "rot_2", "rot_3"]),
        opacity_logits=column(["opacity"])[:, 0],
        sh_dc=column(["f_dc_0", "f_dc_1", "f_dc_2"]),
        sh_rest=column(rest_names).reshape(n, 3, num_sh_coeffs(degree) - 1).transpose(0, 2, 1),
    ).to_gaussians(path)


def _sh_degree(path: Path, rest_names: list[str]) -> int:
    expected = [f"f_rest_{i}" for i in range(len(rest_names))]
    for degree in range(MAX_SH_DEGREE + 1):
        if len(rest_names) == 3 * (num_sh_coeffs(degree) - 1) and rest_names == expected:
            return degree
    raise UserError(
        f"'{path}' has {len(rest_names)} f_rest properties; a 3DGS .ply has 0, 9, 24 or 45 "
        "(SH degree 0..3) numbered from f_rest_0"
    )


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
