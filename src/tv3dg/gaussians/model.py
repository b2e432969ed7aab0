"""The Gaussians: raw parameters as an `nn.Module`, activations as properties.

Parameters are stored unconstrained, as 3DGS `.ply` files store them: log-scales, unnormalised
quaternions (w, x, y, z), opacity logits and SH coefficients split into the DC term and the rest.
Optimisers see the raw tensors; everything that renders goes through the activations.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from tv3dg.gaussians.sh import eval_sh, num_sh_coeffs, rgb_to_sh_dc, sh_degree_from_coeffs

PARAMETER_NAMES = ("means", "log_scales", "quats", "opacity_logits", "sh_dc", "sh_rest")


class Gaussians(nn.Module):
    """N anisotropic 3D Gaussians with SH colour of degree `max_sh_degree` (0..3).

    Shapes: means [N,3], log_scales [N,3], quats [N,4] (w,x,y,z), opacity_logits [N,1],
    sh_dc [N,1,3], sh_rest [N,(D+1)^2-1,3]. `active_sh_degree` (<= max) is how many bands
    rendering uses; a pipeline can raise it during training. It is a buffer, so `state_dict()`
    is a complete, safetensors-ready checkpoint (`from_state_dict` rebuilds any N).
    """

    active_sh_degree_buffer: Tensor

    def __init__(
        self,
        means: Tensor,
        log_scales: Tensor,
        quats: Tensor,
        opacity_logits: Tensor,
        sh_dc: Tensor,
        sh_rest: Tensor,
        active_sh_degree: int | None = None,
    ) -> None:
        super().__init__()
        n = means.shape[0]
        max_degree = _degree_of_rest(sh_rest.shape[1])
        expected = {
            "means": (n, 3), "log_scales": (n, 3), "quats": (n, 4), "opacity_logits": (n, 1),
            "sh_dc": (n, 1, 3), "sh_rest": (n, num_sh_coeffs(max_degree) - 1, 3),
        }
        values = dict(zip(PARAMETER_NAMES, (means, log_scales, quats, opacity_logits, sh_dc, sh_rest)))
        for name, value in values.items():
            if tuple(value.shape) != expected[name]:
                raise ValueError(f"Gaussians.{name} must have shape {expected[name]}, got {tuple(value.shape)}")
            setattr(self, name, nn.Parameter(value.detach().clone()))
        degree = max_degree if active_sh_degree is None else active_sh_degree
        if not 0 <= degree <= max_degree:
            raise ValueError(f"active_sh_degree must be in 0..{max_degree}, got {degree}")
        self.register_buffer("active_sh_degree_buffer", torch.tensor(degree, dtype=torch.int64))

    # ----- construction -------------------------------------------------------------------------
    @classmethod
    def from_points(
        cls,
        xyz: Tensor,
        rgb: Tensor,
        sh_degree: int = 0,
        scale: float | Tensor | None = None,
        opacity: float = 0.1,
        active_sh_degree: int = 0,
    ) -> "Gaussians":
        """Isotropic Gaussians at `xyz` [N,3] with colour `rgb` [N,3] in [0,1].

        `scale` is the world-space standard deviation (a number or [N]); by default the distance
        to the nearest of the other points, so that neighbouring Gaussians just touch.
        """
        xyz = xyz.detach().float()
        n = xyz.shape[0]
        if n == 0:
            raise ValueError("Gaussians.from_points needs at least one point")
        if scale is None:
            scale = nearest_neighbour_distance(xyz)
        scale_t = torch.as_tensor(scale, dtype=torch.float32, device=xyz.device).expand(n)
        quats = torch.zeros(n, 4, device=xyz.device)
        quats[:, 0] = 1.0
        opacity_t = torch.full((n, 1), float(opacity), device=xyz.device)
        return cls(
            means=xyz,
            log_scales=torch.log(scale_t.clamp_min(1e-7)).unsqueeze(-1).expand(n, 3).clone(),
            quats=quats,
            opacity_logits=torch.logit(opacity_t, eps=1e-6),
            sh_dc=rgb_to_sh_dc(rgb.detach().float().to(xyz.device)).reshape(n, 1, 3),
            sh_rest=torch.zeros(n, num_sh_coeffs(sh_degree) - 1, 3, device=xyz.device),
            active_sh_degree=min(active_sh_degree, sh_degree),
        )

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor]) -> "Gaussians":
        """Rebuild from `state_dict()` (e.g. read back with `safetensors.torch.load_file`)."""
        missing = [name for name in PARAMETER_NAMES if name not in state]
        if missing:
            raise ValueError(f"Gaussian state is missing {', '.join(missing)}")
        degree = state.get("active_sh_degree_buffer")
        return cls(*(state[name] for name in PARAMETER_NAMES), active_sh_degree=None if degree is None else int(degree))

    def detached_copy(self, device: torch.device | str = "cpu") -> "Gaussians":
        """An independent copy on `device` for exports and evaluations.

        `Module.cpu()` moves a module in place, which would pull the live parameters out from
        under the optimiser of a CUDA run; a copy leaves them where they are.
        """
        return Gaussians.from_state_dict({k: v.detach().to(device) for k, v in self.state_dict().items()})

    # ----- activations --------------------------------------------------------------------------
    @property
    def num_points(self) -> int:
        return self.means.shape[0]

    @property
    def max_sh_degree(self) -> int:
        return _degree_of_rest(self.sh_rest.shape[1])

    @property
    def active_sh_degree(self) -> int:
        return int(self.active_sh_degree_buffer)

    @active_sh_degree.setter
    def active_sh_degree(self, degree: int) -> None:
        if not 0 <= degree <= self.max_sh_degree:
            raise ValueError(f"active_sh_degree must be in 0..{self.max_sh_degree}, got {degree}")
        self.active_sh_degree_buffer.fill_(degree)

    def increase_sh_degree(self) -> None:
        """Turn on one more SH band (no-op at the maximum): the usual coarse-to-fine colour schedule."""
        self.active_sh_degree = min(self.active_sh_degree + 1, self.max_sh_degree)

    @property
    def scales(self) -> Tensor:
        return torch.exp(self.log_scales)

    @property
    def rotations(self) -> Tensor:
        """Unit quaternions (w, x, y, z)."""
        return nn.functional.normalize(self.quats, dim=-1)

    @property
    def opacities(self) -> Tensor:
        return torch.sigmoid(self.opacity_logits)

    @property
    def sh_coeffs(self) -> Tensor:
        """All SH coefficients [N, (D+1)^2, 3], DC first."""
        return torch.cat([self.sh_dc, self.sh_rest], dim=1)

    def colors(self, view_dirs: Tensor) -> Tensor:
        """RGB seen along `view_dirs` ([..., N, 3], camera -> Gaussian), using the active degree."""
        return eval_sh(self.active_sh_degree, self.sh_coeffs, view_dirs)

    def covariances(self) -> Tensor:
        """World-space covariance matrices [N, 3, 3] = R S S^T R^T."""
        rs = quaternion_to_matrix(self.rotations) * self.scales.unsqueeze(-2)
        return rs @ rs.transpose(-1, -2)

    def extra_repr(self) -> str:
        return f"num_points={self.num_points}, max_sh_degree={self.max_sh_degree}, active_sh_degree={self.active_sh_degree}"


def quaternion_to_matrix(quats: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] from unit quaternions (w, x, y, z) [..., 4]."""
    w, x, y, z = quats.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quats.shape[:-1] + (3, 3))


def nearest_neighbour_distance(xyz: Tensor, chunk: int = 2048) -> Tensor:
    """Distance from each point to its nearest other point [N] (chunked, so memory stays O(N*chunk))."""
    n = xyz.shape[0]
    if n == 1:
        return torch.ones(1, dtype=xyz.dtype, device=xyz.device)
    out = torch.empty(n, dtype=xyz.dtype, device=xyz.device)
    for start in range(0, n, chunk):
        block = torch.cdist(xyz[start : start + chunk], xyz)
        rows = torch.arange(block.shape[0], device=xyz.device)
        block[rows, rows + start] = float("inf")
        out[start : start + chunk] = block.min(dim=1).values
    return out


def _degree_of_rest(count: int) -> int:
    """SH degree from the number of non-DC coefficients per channel."""
    return sh_degree_from_coeffs(count + 1)
