"""Gaussians as plain numpy arrays in the Inria `.ply` parametrisation: what every file format reads
and writes, so that each format only converts to and from this one layout.

Opacities are logits, scales logs, quaternions (w, x, y, z) as stored (not normalised), SH split
into the DC term [N,3] and the rest [N,K,3] (coefficient-major, K = (D+1)^2 - 1).
`to_gaussians` is the one place where a file's contents are checked before they become Gaussians.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tv3dg.errors import UserError
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.sh import MAX_SH_DEGREE, num_sh_coeffs

_REST_COUNTS = {num_sh_coeffs(degree) - 1: degree for degree in range(MAX_SH_DEGREE + 1)}


@dataclass(frozen=True)
class SplatArrays:
    means: np.ndarray  # [N,3]
    log_scales: np.ndarray  # [N,3]
    quats: np.ndarray  # [N,4] w, x, y, z
    opacity_logits: np.ndarray  # [N]
    sh_dc: np.ndarray  # [N,3]
    sh_rest: np.ndarray  # [N,K,3]

    @classmethod
    def from_gaussians(cls, gaussians: Gaussians) -> "SplatArrays":
        n = gaussians.num_points

        def array(t: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
            return np.ascontiguousarray(t.detach().float().cpu().numpy().reshape(shape))

        return cls(
            means=array(gaussians.means, (n, 3)),
            log_scales=array(gaussians.log_scales, (n, 3)),
            quats=array(gaussians.quats, (n, 4)),
            opacity_logits=array(gaussians.opacity_logits, (n,)),
            sh_dc=array(gaussians.sh_dc, (n, 3)),
            sh_rest=array(gaussians.sh_rest, (n, gaussians.sh_rest.shape[1], 3)),
        )

    @property
    def num_points(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return _REST_COUNTS[self.sh_rest.shape[1]]

    @property
    def unit_quats(self) -> np.ndarray:
        """Normalised (w, x, y, z) quaternions, the form the compact formats store."""
        return self.quats / np.linalg.norm(self.quats, axis=1, keepdims=True)

    @property
    def opacities(self) -> np.ndarray:
        """Opacities in [0, 1] (float64 so that large logits do not overflow `exp`)."""
        return 1.0 / (1.0 + np.exp(-self.opacity_logits.astype(np.float64)))

    def to_gaussians(self, path: str | Path) -> Gaussians:
        """Checked Gaussians (active SH degree = the stored one); a `UserError` naming `path` when
        the contents cannot be Gaussians (empty, non-finite, zero rotations, odd SH count)."""
        n = self.means.shape[0]
        if n == 0:
            raise UserError(f"'{path}' holds no Gaussians; pass a file with at least one Gaussian")
        if self.sh_rest.shape[1] not in _REST_COUNTS:
            raise UserError(
                f"'{path}' has {self.sh_rest.shape[1]} SH coefficients beyond the DC term per channel; "
                "a Gaussian file has 0, 3, 8 or 15 (SH degree 0..3)"
            )
        for name in ("means", "log_scales", "quats", "opacity_logits", "sh_dc", "sh_rest"):
            if not np.isfinite(getattr(self, name)).all():
                raise UserError(f"'{path}' has non-finite values in its {name.replace('_', ' ')}; the file is corrupt")
        if (np.linalg.norm(self.quats, axis=1) == 0).any():
            raise UserError(f"'{path}' has Gaussians with an all-zero rotation quaternion; the file is corrupt")

        def tensor(a: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32).reshape(shape))

        return Gaussians(
            means=tensor(self.means, (n, 3)),
            log_scales=tensor(self.log_scales, (n, 3)),
            quats=tensor(self.quats, (n, 4)),
            opacity_logits=tensor(self.opacity_logits, (n, 1)),
            sh_dc=tensor(self.sh_dc, (n, 1, 3)),
            sh_rest=tensor(self.sh_rest, (n, self.sh_rest.shape[1], 3)),
            active_sh_degree=self.sh_degree,
        )


def logit(p: np.ndarray) -> np.ndarray:
    """Opacity logits from opacities that a format stored in [0, 1]; 0 and 1 are kept finite
    (clipped to 1e-6 from the ends), as the trainers clamp them."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1.0 - 1e-6)
    return np.log(p / (1.0 - p)).astype(np.float32)
