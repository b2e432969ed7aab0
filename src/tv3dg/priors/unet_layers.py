"""Naming the layers of a diffusers UNet: blocks with cross-attention, self-attention modules."""

from __future__ import annotations

from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention

LAYER_ALIASES = {"mid": "mid_block"}


def matches_block(name: str, layer_id: str) -> bool:
    """Whether module `name` lies in `layer_id` ("mid", "up_blocks.1", "up_blocks.1.attentions.0", ...).

    Matches whole name components, so "up_blocks.1" does not match "up_blocks.10".
    """
    prefix = LAYER_ALIASES.get(layer_id, layer_id)
    return name == prefix or name.startswith(prefix + ".")


def cross_attention_blocks(unet: UNet2DConditionModel) -> list[str]:
    """Blocks that hold attention layers, e.g. ["down_blocks.0", "mid_block", "up_blocks.1"] (in UNet order)."""
    blocks = [f"down_blocks.{i}" for i, b in enumerate(unet.down_blocks) if hasattr(b, "attentions")]
    blocks += ["mid_block"] if unet.mid_block is not None and hasattr(unet.mid_block, "attentions") else []
    blocks += [f"up_blocks.{i}" for i, b in enumerate(unet.up_blocks) if hasattr(b, "attentions")]
    return blocks


def self_attention_modules(unet: UNet2DConditionModel) -> list[str]:
    """Names of the transformer blocks' self-attention (`attn1`) modules."""
    return [
        name
        for name, module in unet.named_modules()
        if isinstance(module, Attention) and not module.is_cross_attention and name.endswith("attn1")
    ]
