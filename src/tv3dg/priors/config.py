"""The typed config of a diffusion prior: which weights, how to run them, how to condition them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from tv3dg.errors import UserError

MINI = "mini"
"""The name that selects the bundled mini prior (model) or its IP-Adapter (ip_adapter)."""


@dataclass
class PriorConfig:
    """Weights and run options of `DiffusersPrior`.

    `model` is a diffusers SD-1.5-architecture folder, a Hugging Face id already in the local
    cache (e.g. `runwayml/stable-diffusion-v1-5`), or "mini". `ip_adapter` is an IP-Adapter
    SD-1.5 `.safetensors` file (or "mini", or None for text only); `image_encoder` defaults to
    the folder `image_encoder/` next to that file.
    """

    model: str = MINI
    ip_adapter: Optional[str] = MINI
    image_encoder: Optional[str] = None
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
    negative_prompt: str = ""
    view_dependent_prompts: Optional[bool] = None  # None: on unless the UNet is camera-conditioned
    ip_mode: Literal["texture", "style"] = "texture"
    ip_scale: float = 1.0
    style_blocks: Optional[list[str]] = None  # None: the first up block with cross-attention
    pag_layers: list[str] = field(default_factory=lambda: ["mid"])
    resolution: Optional[int] = None  # render size fed to the VAE; None: vae.config.sample_size
    vae_slicing: bool = False  # decode one image at a time (GPU memory)
    vae_tiling: bool = False  # encode/decode in tiles (GPU memory at high resolution)
    channels_last: bool = False  # UNet memory format (faster on some GPUs)
    text_encoder_on_cpu: bool = False  # keep the text encoder off the GPU; prompts are cached

    def __post_init__(self) -> None:
        if not 0.0 <= self.ip_scale <= 2.0:
            raise UserError(f"ip_scale must be between 0 and 2 (1.0 = full image prompt), got {self.ip_scale}")
        if self.resolution is not None and self.resolution < 8:
            raise UserError(f"resolution must be at least 8 pixels (or null for the model's own), got {self.resolution}")
