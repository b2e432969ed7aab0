"""One `load` and one `save` for every Gaussian file format, chosen by the file name's extension.

| name             | extension         | keeps                                    |
| ply              | `.ply`            | everything, float32 (the Inria layout)   |
| compressed.ply   | `.compressed.ply` | SH 0-3, quantised per chunk (PlayCanvas) |
| spz              | `.spz`            | SH 0-3, quantised (Niantic)              |
| splat            | `.splat`          | SH 0 only, 8-bit colour (antimatter15)   |
| glb              | `.glb`            | SH 0-3, float32 (glTF KHR_gaussian_splatting) |

A `.ply` is read as compressed when its header says so, whatever its name. Every reader raises a
`UserError` naming the file for a damaged, truncated or foreign file; every writer is atomic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tv3dg.errors import UserError
from tv3dg.gaussians.arrays import SplatArrays
from tv3dg.gaussians.compressed_ply import is_compressed_ply, read_compressed_ply, write_compressed_ply
from tv3dg.gaussians.gltf import read_glb, write_glb
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.ply import load_ply, save_ply
from tv3dg.gaussians.splat import read_splat, write_splat
from tv3dg.gaussians.spz import read_spz, write_spz


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    max_sh_degree: int
    read: Callable[[Path], SplatArrays] | None  # None: the Inria .ply, read by `load_ply` directly
    write: Callable[[Path, SplatArrays], None] | None


FORMATS = {
    f.name: f
    for f in (
        Format("ply", ".ply", 3, None, None),
        Format("compressed.ply", ".compressed.ply", 3, read_compressed_ply, write_compressed_ply),
        Format("spz", ".spz", 3, read_spz, write_spz),
        Format("splat", ".splat", 0, read_splat, write_splat),
        Format("glb", ".glb", 3, read_glb, write_glb),
    )
}
FORMAT_NAMES = tuple(FORMATS)


def format_of(path: str | Path) -> Format:
    """The format a file name asks for (the longest matching extension wins), or a `UserError`."""
    name = Path(path).name.lower()
    matches = [f for f in FORMATS.values() if name.endswith(f.suffix)]
    if not matches:
        known = ", ".join(f.suffix for f in FORMATS.values())
        raise UserError(f"'{path}' has an extension tv3dg does not know for Gaussians; use one of {known}")
    return max(matches, key=lambda f: len(f.suffix))


def load(path: str | Path) -> Gaussians:
    """Gaussians from any supported file; the active SH degree is the stored one."""
    path = Path(path)
    fmt = format_of(path)
    if not path.is_file():
        raise UserError(f"'{path}' does not exist; pass the path of a Gaussian file")
    if fmt.suffix.endswith(".ply"):  # either kind of .ply: the header decides, not the name
        if not is_compressed_ply(path):
            return load_ply(path)
        fmt = FORMATS["compressed.ply"]
    assert fmt.read is not None
    return fmt.read(path).to_gaussians(path)


def save(path: str | Path, gaussians: Gaussians) -> Format:
    """Write `gaussians` in the format of `path`'s extension (atomically); returns that format."""
    fmt = format_of(path)
    if fmt.write is None:
        save_ply(path, gaussians)
    else:
        fmt.write(Path(path), SplatArrays.from_gaussians(gaussians))
    return fmt
