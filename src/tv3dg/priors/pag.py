"""Perturbed-Attention Guidance: identity self-attention on the perturbed rows of a batch.

PAG's perturbed branch replaces the self-attention map of chosen layers by the identity, so each
token attends only to itself and the layer outputs `to_out(to_v(x))`. Our processor applies
that to the LAST `num_perturbed` rows of the batch and leaves the other rows to the layer's own
processor, so any branch layout ([c-, c+, c+ptb] or [c-, text, c+, c+ptb]) works in one call.
It is installed only on the chosen `attn1` modules and only for the duration of a call.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention
from torch import Tensor

from tv3dg.errors import UserError
from tv3dg.priors.unet_layers import matches_block, self_attention_modules


def identity_self_attention(attn: Attention, hidden_states: Tensor, temb: Tensor | None = None) -> Tensor:
    """Self-attention with the identity attention map (norms, residual and rescaling as usual)."""
    residual = hidden_states
    if attn.spatial_norm is not None:
        hidden_states = attn.spatial_norm(hidden_states, temb)
    input_ndim = hidden_states.ndim
    if input_ndim == 4:
        batch, channels, height, width = hidden_states.shape
        hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    hidden_states = attn.to_out[1](attn.to_out[0](attn.to_v(hidden_states)))
    if input_ndim == 4:
        hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channels, height, width)
    if attn.residual_connection:
        hidden_states = hidden_states + residual
    return hidden_states / attn.rescale_output_factor


class PerturbedTailSelfAttnProcessor:
    """Runs `base` on the leading rows and identity attention on the last `num_perturbed` rows."""

    def __init__(self, base: Any, num_perturbed: int):
        self.base = base
        self.num_perturbed = num_perturbed

    def __call__(
        self,
        attn: Attention,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        temb: Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Tensor:
        split = hidden_states.shape[0] - self.num_perturbed
        perturbed = identity_self_attention(attn, hidden_states[split:], None if temb is None else temb[split:])
        if split == 0:
            return perturbed
        normal = self.base(
            attn,
            hidden_states[:split],
            encoder_hidden_states,
            None if attention_mask is None else attention_mask[:split],
            None if temb is None else temb[:split],
            *args,
            **kwargs,
        )
        return torch.cat([normal, perturbed])


def pag_modules(unet: UNet2DConditionModel, layer_ids: list[str]) -> list[str]:
    """The self-attention modules inside the given layers ("mid", "up_blocks.1", ...)."""
    available = self_attention_modules(unet)
    chosen: list[str] = []
    for layer_id in layer_ids:
        found = [name for name in available if matches_block(name, layer_id)]
        if not found:
            blocks = sorted({name.split(".attentions")[0] for name in available})
            raise UserError(f"PAG layer '{layer_id}' has no self-attention in this UNet; choose from {blocks}")
        chosen += [name for name in found if name not in chosen]
    return chosen


@contextmanager
def perturbed_self_attention(unet: UNet2DConditionModel, module_names: list[str], num_perturbed: int) -> Iterator[None]:
    """Install the PAG processor on `module_names` for the block; restore the previous processors after."""
    modules = dict(unet.named_modules())
    saved = {name: modules[name].processor for name in module_names}
    try:
        for name, processor in saved.items():
            modules[name].set_processor(PerturbedTailSelfAttnProcessor(processor, num_perturbed))
        yield
    finally:
        for name, processor in saved.items():
            modules[name].set_processor(processor)
