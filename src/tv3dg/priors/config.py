"""The typed config of a diffusion prior: which weights, how to run them, how to condition them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from tv3dg.errors import UserError

MINI = "mini"
"""The name that selects the bundled mini prior (model) or its IP-Adapter (ip_adapter)."""


@dataclass
class PriorConfig:
    """Which diffusion-prior weights `DiffusersPrior` loads, and how it runs and conditions them."""

    model: str = MINI
    """SD-1.5-architecture diffusers folder, a Hugging Face id in the local cache, or `mini` (the bundled prior)."""
    ip_adapter: Optional[str] = MINI
    """IP-Adapter SD-1.5 `.safetensors` file (or a cached id, or `mini`); null: text only."""
    image_encoder: Optional[str] = None
    """The adapter's CLIP image-encoder folder; null: `image_encoder/` beside the adapter file."""
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """Precision of the prior's weights and activations."""
    device: str = "auto"
    """Where the prior runs: `auto` (CUDA when available), `cpu`, `cuda`, `cuda:1`, ..."""
    negative_prompt: str = ""
    """Text of the negative condition c- of classifier-free guidance."""
    view_dependent_prompts: Optional[bool] = None
    """Append "front view" / "side view" / ... to the prompt per camera; null: on unless the UNet is camera-conditioned."""
    ip_mode: Literal["texture", "style"] = "texture"
    """IP-Adapter fusion: `texture` on every cross-attention layer, `style` on the style blocks only."""
    ip_scale: float = 1.0
    """Weight of the image tokens in cross-attention, 0 to 2 (1: full image prompt)."""
    style_blocks: Optional[list[str]] = None
    """UNet blocks that take the image in `style` mode; null: the first up block with cross-attention (`up_blocks.1` in SD-1.5)."""
    pag_layers: list[str] = field(default_factory=lambda: ["mid"])
    """Self-attention layers perturbed by PAG (identity attention), e.g. `mid`, `up_blocks.1`, `down_blocks.2.attentions.0`."""
    resolution: Optional[int] = None
    """Image size fed to the VAE (renders are resized to it); null: the VAE's own `sample_size`."""
    vae_slicing: bool = False
    """Decode one image at a time (saves GPU memory)."""
    vae_tiling: bool = False
    """Encode and decode in tiles (saves GPU memory at high resolution)."""
    channels_last: bool = False
    """Run the UNet in channels-last memory format (faster on some GPUs)."""
    text_encoder_on_cpu: bool = False
    """Keep the text encoder off the GPU; prompts are encoded once and cached."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.ip_scale <= 2.0:
            raise UserError(f"ip_scale must be between 0 and 2 (1.0 = full image prompt), got {self.ip_scale}")
        if self.resolution is not None and self.resolution < 8:
            raise UserError(f"resolution must be at least 8 pixels (or null for the model's own), got {self.resolution}")
