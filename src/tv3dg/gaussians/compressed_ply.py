"""PlayCanvas/SuperSplat's compressed `.ply` (`*.compressed.ply`): Gaussians in chunks of 256, each
attribute packed to a few bits relative to its chunk's bounds, about a quarter of an Inria `.ply`.

Written and read by `gsply`. What survives a round trip: positions and log-scales with 10-11 bits
per axis of their chunk's range, the DC colour (as 0.5 + C0 * dc) with 8 bits of its chunk's range,
opacity as 8 bits of sigmoid, rotations as smallest-three with 10-bit components, higher SH bands
as 8 bits in [-4, 4].
"""

from __future__ import annotations

from pathlib import Path

from tv3dg.atomic import write_bytes_atomic
from tv3dg.errors import UserError
from tv3dg.gaussians.arrays import SplatArrays
from tv3dg.gaussians.gsply_bridge import from_gsdata, read_with_gsply, to_gsdata

SUFFIX = ".compressed.ply"


def is_compressed_ply(path: Path) -> bool:
    """Whether a `.ply` file's header declares the PlayCanvas layout (a `chunk` element and packed vertices)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    header = head.split(b"end_header", 1)[0]
    return b"element chunk" in header and b"packed_position" in header


def write_compressed_ply(path: Path, arrays: SplatArrays) -> None:
    import gsply

    write_bytes_atomic(path, gsply.compress_to_bytes(to_gsdata(arrays)))


def read_compressed_ply(path: Path) -> SplatArrays:
    import gsply

    data = read_with_gsply(path, "compressed .ply", gsply.reader.read_compressed)
    if data is None:  # gsply's answer for a header it cannot follow or data shorter than declared
        raise UserError(f"'{path}' is not a readable compressed .ply file; it may be truncated or damaged")
    return from_gsdata(data)
