"""Tiny random Shap-E pipelines (text and image) saved as diffusers folders, for `init.kind=shap_e` tests.

The renderer decodes a surface by `tv3dg.init.random_shap_e.give_surface`; its colours are then
spread over the surface (see `_spread_colours`), so that tests can tell where a colour came from.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import PriorTransformer, ShapEImg2ImgPipeline, ShapEPipeline
from diffusers.pipelines.shap_e import ShapERenderer
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPVisionConfig,
    CLIPVisionModel,
)

from tv3dg.init.random_shap_e import give_surface, shap_e_scheduler
from tv3dg.priors.random_weights import make_bpe_tokenizer

WIDTH, TOKENS, RENDERER = 16, 32, 8  # latent width, latent tokens (= 4 MLP weights x RENDERER rows), MLP width


def tiny_renderer() -> ShapERenderer:
    renderer = ShapERenderer(param_shapes=((RENDERER, 93), (RENDERER, RENDERER), (RENDERER, RENDERER), (RENDERER, RENDERER)),
                             d_latent=WIDTH, d_hidden=RENDERER, n_output=12, background=(0.1, 0.1, 0.1))
    give_surface(renderer)
    with torch.no_grad():
        _spread_colours(renderer.mlp, torch.rand(1, 20000, 3) * 2 - 1)
    return renderer


def _spread_colours(mlp: torch.nn.Module, points: torch.Tensor) -> None:
    """Make the mesh colours (the last layer's "stf" rows 3:6, through a sigmoid) vary over the volume:
    a random MLP this small passes on ~1e-5 of the position's variation, less than one uint8 step of
    colour, so the rows are rescaled to a pre-sigmoid spread of 1.5 around 0 over the volume."""
    last, hidden = mlp.mlp[-1], []
    handle = last.register_forward_hook(lambda module, inputs, output: hidden.append(inputs[0][0]))
    mlp(position=points, direction=None, ts=None, nerf_level="fine", rendering_mode="stf")
    handle.remove()
    pre = hidden[0] @ last.weight[3:6].T
    gain = 1.5 / pre.std(dim=0)
    last.weight[3:6] *= gain[:, None]
    last.bias[3:6] = -(pre * gain).mean(dim=0)


def _prior(**extra) -> PriorTransformer:
    return PriorTransformer(
        num_attention_heads=2, attention_head_dim=8, embedding_dim=WIDTH, num_embeddings=TOKENS, embedding_proj_dim=WIDTH,
        time_embed_dim=32, num_layers=1, clip_embed_dim=2 * WIDTH, additional_embeddings=0, time_embed_act_fn="gelu",
        norm_in_type="layer", encoder_hid_proj_type=None, added_emb_type=None, **extra,
    )


def make_tiny_shap_e(root: Path, seed: int = 0) -> Path:
    """A text-to-3D `ShapEPipeline` folder (the layout of openai/shap-e)."""
    torch.manual_seed(seed)
    tokenizer = make_bpe_tokenizer(root / "tokenizer")
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=WIDTH, projection_dim=WIDTH, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    ShapEPipeline(prior=_prior(), text_encoder=text_encoder, tokenizer=tokenizer, scheduler=shap_e_scheduler(),
                  shap_e_renderer=tiny_renderer()).save_pretrained(root)
    return root


def make_tiny_shap_e_img2img(root: Path, seed: int = 0, image_size: int = 32) -> Path:
    """An image-to-3D `ShapEImg2ImgPipeline` folder (the layout of openai/shap-e-img2img)."""
    torch.manual_seed(seed)
    encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=WIDTH, intermediate_size=32, num_hidden_layers=1,
                                               num_attention_heads=2, image_size=image_size, patch_size=8))
    processor = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    ShapEImg2ImgPipeline(prior=_prior(embedding_proj_norm_type="layer"), image_encoder=encoder, image_processor=processor,
                         scheduler=shap_e_scheduler(), shap_e_renderer=tiny_renderer()).save_pretrained(root)
    return root
