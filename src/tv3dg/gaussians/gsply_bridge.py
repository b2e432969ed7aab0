"""The hand-over to `gsply` (the maintained reader/writer of `.spz` and PlayCanvas compressed `.ply`
that two of our formats use): our arrays to its `GSData` and back, and its errors to ours."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from tv3dg.errors import UserError
from tv3dg.gaussians.arrays import SplatArrays

T = TypeVar("T")


def to_gsdata(arrays: SplatArrays):  # -> gsply.GSData (imported lazily: numba compiles on import)
    import gsply

    return gsply.GSData(
        means=arrays.means, scales=arrays.log_scales, quats=arrays.unit_quats, opacities=arrays.opacity_logits,
        sh0=arrays.sh_dc, shN=arrays.sh_rest,
    )


def from_gsdata(data) -> SplatArrays:
    n = np.asarray(data.means).shape[0]
    rest = data.shN if data.shN is not None else np.zeros((n, 0, 3), np.float32)
    return SplatArrays(
        means=np.asarray(data.means, np.float32).reshape(n, 3),
        log_scales=np.asarray(data.scales, np.float32).reshape(n, 3),
        quats=np.asarray(data.quats, np.float32).reshape(n, 4),
        opacity_logits=np.asarray(data.opacities, np.float32).reshape(n),
        sh_dc=np.asarray(data.sh0, np.float32).reshape(n, 3),
        sh_rest=np.asarray(rest, np.float32).reshape(n, -1, 3),
    )


def read_with_gsply(path: Path, kind: str, read: Callable[[Path], T]) -> T:
    """`read(path)`, with gsply's complaints about a damaged or foreign file as one `UserError`."""
    try:
        return read(path)
    except (ValueError, EOFError, OSError) as err:  # gsply's ways of saying the bytes are not `kind`
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"'{path}' is not a readable {kind} file ({first}); it may be truncated or of another format") from None
