"""IP-Adapter weights of the mini prior in the official SD-1.5 key layout: create and extract
(attaching and splitting are the core's, in `tv3dg.priors.ip_adapter`).

Layout: `image_proj.{proj,norm}.{weight,bias}` (diffusers' `ImageProjection`) and
`ip_adapter.{k}.to_k_ip.weight` / `.to_v_ip.weight` for the k-th cross-attention processor,
k = 1, 3, 5, ... in `unet.attn_processors` order, which is what
`UNet2DConditionModel._load_ip_adapter_weights` reads.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0
from torch import Tensor

from tv3dg.priors.mini.architecture import build_image_projection


def _cross_attention_modules(unet: UNet2DConditionModel) -> list[torch.nn.Module]:
    """Cross-attention modules in `attn_processors` order (the order the loader numbers them)."""
    modules = dict(unet.named_modules())
    return [modules[name[: -len(".processor")]] for name in unet.attn_processors if name.endswith("attn2.processor")]


def initial_ip_adapter_state(unet: UNet2DConditionModel) -> dict[str, dict[str, Tensor]]:
    """A fresh adapter: random projection weight with zero biases (so a zero image embedding
    gives zero image tokens); to_k_ip/to_v_ip start as copies of to_k/to_v."""
    projection = build_image_projection()
    image_proj = {
        "proj.weight": projection.image_embeds.weight.detach().clone(),
        "proj.bias": torch.zeros_like(projection.image_embeds.bias),
        "norm.weight": projection.norm.weight.detach().clone(),
        "norm.bias": torch.zeros_like(projection.norm.bias),
    }
    ip_adapter = {}
    for i, attn in enumerate(_cross_attention_modules(unet)):
        ip_adapter[f"{2 * i + 1}.to_k_ip.weight"] = attn.to_k.weight.detach().clone()
        ip_adapter[f"{2 * i + 1}.to_v_ip.weight"] = attn.to_v.weight.detach().clone()
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


def extract_ip_adapter_state(unet: UNet2DConditionModel) -> dict[str, Tensor]:
    """The attached adapter's weights as one flat dict in the official key layout."""
    projection = unet.encoder_hid_proj.image_projection_layers[0]
    flat = {
        "image_proj.proj.weight": projection.image_embeds.weight,
        "image_proj.proj.bias": projection.image_embeds.bias,
        "image_proj.norm.weight": projection.norm.weight,
        "image_proj.norm.bias": projection.norm.bias,
    }
    processors = [p for name, p in unet.attn_processors.items() if name.endswith("attn2.processor")]
    for i, processor in enumerate(processors):
        if not isinstance(processor, (IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0)):
            raise ValueError("the UNet has no IP-Adapter attached")
        flat[f"ip_adapter.{2 * i + 1}.to_k_ip.weight"] = processor.to_k_ip[0].weight
        flat[f"ip_adapter.{2 * i + 1}.to_v_ip.weight"] = processor.to_v_ip[0].weight
    return {k: v.detach().float().contiguous().clone() for k, v in flat.items()}


def unet_without_ip_adapter(unet: UNet2DConditionModel, fresh: UNet2DConditionModel) -> UNet2DConditionModel:
    """Copy the base UNet weights (no adapter) into `fresh`, a UNet built from the base config."""
    state = {k: v for k, v in unet.state_dict().items() if "encoder_hid_proj" not in k and ".processor." not in k}
    fresh.load_state_dict(state, strict=True)
    return fresh
