"""Tiny random Shap-E pipelines (text and image) saved as diffusers folders, for `init.kind=shap_e` tests.

Two things real checkpoints carry that random ones lack, so that the mesh is not empty:
- a zero crossing of the signed distance inside the volume: the latent projection is made
  constant (its weights zero, the first layer reading only the raw position, so the surface is
  smooth) and the SDF head's bias shifted by the median SDF over the volume;
- the marching-cubes lookup table (the renderer's `mesh_decoder.cases/masks` buffers, zeros until
  a checkpoint fills them): `marching_cubes_table` builds a stand-in that fans a triangle list
  over the sign-changing edges of each cube (not watertight like the real table, but every
  vertex lies on the surface, which is all initialisation samples).
A third thing makes them testable: colours that vary over the surface (see `_spread_colours`).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch
from diffusers import HeunDiscreteScheduler, PriorTransformer, ShapEImg2ImgPipeline, ShapEPipeline
from diffusers.pipelines.shap_e import ShapERenderer
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPVisionConfig,
    CLIPVisionModel,
)

from tv3dg.priors.random_weights import make_bpe_tokenizer

WIDTH, TOKENS, RENDERER = 16, 32, 8  # latent width, latent tokens (= 4 MLP weights x RENDERER rows), MLP width


def _edges() -> list[tuple[int, int]]:
    """The 12 cube edges as corner pairs, in diffusers' order (corner index x + 2y + 4z):
    x-edges over (y, z), then y-edges over (x, z), then z-edges over (x, y), each (0,0) (1,0) (0,1) (1,1)."""
    edges = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        for k in range(4):
            corner = [0, 0, 0]
            corner[others[0]], corner[others[1]] = k & 1, k >> 1
            start = corner[0] + 2 * corner[1] + 4 * corner[2]
            edges.append((start, start + (1 << axis)))
    return edges


def marching_cubes_table() -> tuple[torch.Tensor, torch.Tensor]:
    """cases [256,5,3] (edge indices of up to 5 triangles) and masks [256,5] for diffusers' MeshDecoder."""
    corners = torch.tensor(list(itertools.product((0.0, 1.0), repeat=3)))[:, [2, 1, 0]]  # index x + 2y + 4z
    cases, masks = torch.zeros(256, 5, 3, dtype=torch.long), torch.zeros(256, 5, dtype=torch.bool)
    for case in range(1, 255):
        inside = torch.tensor([(case >> c) & 1 for c in range(8)], dtype=torch.bool)
        crossing = [i for i, (a, b) in enumerate(_edges()) if inside[a] != inside[b]]
        mids = torch.stack([(corners[a] + corners[b]) / 2 for a, b in (_edges()[i] for i in crossing)])
        normal = corners[inside].mean(0) - corners[~inside].mean(0)
        u = torch.linalg.cross(normal, torch.tensor([0.577, 0.577, 0.578]))
        u = u / u.norm().clamp_min(1e-6)
        v = torch.linalg.cross(normal / normal.norm().clamp_min(1e-6), u)
        rel = mids - mids.mean(0)
        order = sorted(range(len(crossing)), key=lambda i: math.atan2(float(rel[i] @ v), float(rel[i] @ u)))
        for t in range(min(len(order) - 2, 5)):
            cases[case, t] = torch.tensor([crossing[order[0]], crossing[order[t + 1]], crossing[order[t + 2]]])
            masks[case, t] = True
    return cases, masks


def tiny_renderer() -> ShapERenderer:
    renderer = ShapERenderer(param_shapes=((RENDERER, 93), (RENDERER, RENDERER), (RENDERER, RENDERER), (RENDERER, RENDERER)),
                             d_latent=WIDTH, d_hidden=RENDERER, n_output=12, background=(0.1, 0.1, 0.1))
    with torch.no_grad():
        for name, parameter in renderer.params_proj.named_parameters():
            if name.endswith("weight"):
                parameter.zero_()
        first = renderer.params_proj.projections["nerstf__mlp__0__weight"].proj.bias.view(RENDERER, 93)
        first[:, 3:] = 0  # the raw position only, no sin/cos features: a smooth surface, a small mesh
        for name, value in renderer.params_proj(torch.zeros(1, TOKENS, WIDTH)).items():
            renderer.mlp.get_parameter(name.removeprefix("nerstf.")).copy_(value[0])
        points = torch.rand(1, 20000, 3) * 2 - 1
        sdf = torch.atanh(renderer.mlp(position=points, direction=None, ts=None, nerf_level="fine",
                                       rendering_mode="stf").signed_distance.clamp(-0.999, 0.999))
        renderer.mlp.mlp[-1].bias[0] -= sdf.median()
        _spread_colours(renderer.mlp, points)
        cases, masks = marching_cubes_table()
        renderer.mesh_decoder.cases.copy_(cases)
        renderer.mesh_decoder.masks.copy_(masks)
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


def _scheduler() -> HeunDiscreteScheduler:
    return HeunDiscreteScheduler(beta_schedule="exp", num_train_timesteps=1024, prediction_type="sample",
                                 use_karras_sigmas=True, clip_sample=True, clip_sample_range=1.0)


def make_tiny_shap_e(root: Path, seed: int = 0) -> Path:
    """A text-to-3D `ShapEPipeline` folder (the layout of openai/shap-e)."""
    torch.manual_seed(seed)
    tokenizer = make_bpe_tokenizer(root / "tokenizer")
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=WIDTH, projection_dim=WIDTH, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    ShapEPipeline(prior=_prior(), text_encoder=text_encoder, tokenizer=tokenizer, scheduler=_scheduler(),
                  shap_e_renderer=tiny_renderer()).save_pretrained(root)
    return root


def make_tiny_shap_e_img2img(root: Path, seed: int = 0, image_size: int = 32) -> Path:
    """An image-to-3D `ShapEImg2ImgPipeline` folder (the layout of openai/shap-e-img2img)."""
    torch.manual_seed(seed)
    encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=WIDTH, intermediate_size=32, num_hidden_layers=1,
                                               num_attention_heads=2, image_size=image_size, patch_size=8))
    processor = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    ShapEImg2ImgPipeline(prior=_prior(embedding_proj_norm_type="layer"), image_encoder=encoder, image_processor=processor,
                         scheduler=_scheduler(), shap_e_renderer=tiny_renderer()).save_pretrained(root)
    return root
