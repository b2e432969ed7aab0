"""antimatter15's `.splat`: 32 bytes per Gaussian, no header, the format of the first web viewers.

Per Gaussian, little-endian: position 3 x float32, scale 3 x float32 (linear, not log), colour
RGBA 4 x uint8 (RGB = 0.5 + C0 * dc, A = opacity, each times 255), rotation 4 x uint8
(w, x, y, z of the unit quaternion, each as q * 128 + 128). Only the DC colour survives, clipped
to [0, 1]: higher SH bands are dropped. What survives a round trip: positions and scales exactly
(float32), colour and opacity in steps of 1/255, quaternion components in steps of 1/128.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tv3dg.atomic import write_bytes_atomic
from tv3dg.errors import UserError
from tv3dg.gaussians.arrays import SplatArrays, logit
from tv3dg.gaussians.sh import SH_C0

RECORD = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rotation", "u1", 4)])


def _to_byte(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def write_splat(path: Path, arrays: SplatArrays) -> None:
    records = np.empty(arrays.num_points, dtype=RECORD)
    records["position"] = arrays.means
    records["scale"] = np.exp(arrays.log_scales)
    records["rgba"][:, :3] = _to_byte(0.5 + SH_C0 * arrays.sh_dc)
    records["rgba"][:, 3] = _to_byte(arrays.opacities)
    records["rotation"] = np.clip(np.round(arrays.unit_quats * 128.0 + 128.0), 0, 255).astype(np.uint8)
    write_bytes_atomic(path, records.tobytes())


def read_splat(path: Path) -> SplatArrays:
    size = path.stat().st_size
    if size % RECORD.itemsize:
        raise UserError(
            f"'{path}' is {size} bytes, not a whole number of {RECORD.itemsize}-byte .splat records; "
            "it is truncated or not a .splat file"
        )
    records = np.fromfile(path, dtype=RECORD)
    n = len(records)
    if (records["scale"] < 0).any():
        raise UserError(f"'{path}' has negative scales, which a .splat file cannot hold; it is not a .splat file")
    with np.errstate(divide="ignore"):
        log_scales = np.log(records["scale"])  # a zero scale becomes -inf and is reported as non-finite
    rgba = records["rgba"].astype(np.float32) / 255.0
    return SplatArrays(
        means=records["position"].astype(np.float32),
        log_scales=log_scales.astype(np.float32),
        quats=(records["rotation"].astype(np.float32) - 128.0) / 128.0,
        opacity_logits=logit(rgba[:, 3]),
        sh_dc=((rgba[:, :3] - 0.5) / SH_C0).astype(np.float32),
        sh_rest=np.zeros((n, 0, 3), np.float32),
    )
