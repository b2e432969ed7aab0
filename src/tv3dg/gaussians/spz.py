"""Niantic's `.spz`: gzip-compressed, quantised Gaussians, about a tenth of an Inria `.ply`.

Written and read by `gsply` (container version 3). What survives a round trip (the format's
quantisation): positions as 24-bit fixed point with 12 fractional bits (steps of 1/4096 within
+-2048), log-scales in steps of 1/16 within [-10, 5.9], opacity as 8 bits of sigmoid, the DC colour
in steps of 1/38.25 within +-3.3, rotations as smallest-three with 9-bit components, higher SH
bands in steps of 1/128 within [-1, 1). The file's axes are right-up-back, as our world's are.
"""

from __future__ import annotations

from pathlib import Path

from tv3dg.atomic import atomic_path
from tv3dg.gaussians.arrays import SplatArrays
from tv3dg.gaussians.gsply_bridge import from_gsdata, read_with_gsply, to_gsdata


def write_spz(path: Path, arrays: SplatArrays) -> None:
    import gsply

    with atomic_path(path) as tmp:
        gsply.write_spz(tmp, to_gsdata(arrays), version=3)


def read_spz(path: Path) -> SplatArrays:
    import gsply

    return from_gsdata(read_with_gsply(path, ".spz", gsply.read_spz))
