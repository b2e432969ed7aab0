"""Camera conditioning shared by the mini prior's training and its use in distillation.

A UNet whose config has `class_embed_type == "projection"` and
`projection_class_embeddings_input_dim == 4` is camera-conditioned: it gets these features as
`class_labels`. SD-1.5 checkpoints are not; they use view-dependent prompts instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

CAMERA_FEATURE_DIM = 4


def camera_features(elevation_deg: Tensor, azimuth_deg: Tensor) -> Tensor:
    """[B, 4] = (sin e, cos e, sin a, cos a): continuous across the azimuth wrap-around."""
    elev = torch.deg2rad(elevation_deg.float())
    azim = torch.deg2rad(azimuth_deg.float())
    return torch.stack([torch.sin(elev), torch.cos(elev), torch.sin(azim), torch.cos(azim)], dim=-1)
