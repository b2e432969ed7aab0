"""Shap-E with random weights that still decodes a surface, at any size (tests, benchmarks/gpu.py).

`random_shap_e_pipeline` builds openai/shap-e's text-to-3D pipeline at its real size (the prior
transformer's depth may be reduced for a CPU); `give_surface` makes any randomly initialised
renderer decode a mesh.

Two things real checkpoints carry that random ones lack, so that the mesh is not empty:
- a zero crossing of the signed distance inside the volume: the latent projection is made
  constant (its weights zero, the first layer reading only the raw position, so the surface is
  smooth) and the SDF head's bias shifted by the median SDF over the volume;
- the marching-cubes lookup table (the renderer's `mesh_decoder.cases/masks` buffers, zeros until
  a checkpoint fills them): `marching_cubes_table` builds a stand-in that fans a triangle list
  over the sign-changing edges of each cube (not watertight like the real table, but every
  vertex lies on the surface, which is all initialisation samples).
"""

from __future__ import annotations

import itertools
import math

import tempfile
from pathlib import Path

import torch
from diffusers import HeunDiscreteScheduler, PriorTransformer, ShapEPipeline
from diffusers.pipelines.shap_e import ShapERenderer
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from tv3dg.priors.random_weights import make_bpe_tokenizer

POSITION_FEATURES = 3  # the first MLP layer's inputs that are the raw position (the rest: sin/cos features)
SHAP_E_PRIOR = {  # openai/shap-e's prior transformer (its num_layers may be reduced)
    "num_attention_heads": 16, "attention_head_dim": 64, "num_layers": 24, "embedding_dim": 1024,
    "num_embeddings": 1024, "additional_embeddings": 0, "time_embed_act_fn": "gelu", "time_embed_dim": 4096,
    "clip_embed_dim": 2048, "embedding_proj_dim": 768, "norm_in_type": "layer", "encoder_hid_proj_type": None,
    "added_emb_type": None,
}


def shap_e_scheduler() -> HeunDiscreteScheduler:
    """openai/shap-e's scheduler: Heun with Karras sigmas over an exponential schedule, predicting the sample."""
    return HeunDiscreteScheduler(beta_schedule="exp", num_train_timesteps=1024, prediction_type="sample",
                                 use_karras_sigmas=True, clip_sample=True, clip_sample_range=1.0)


def random_shap_e_pipeline(device: str, dtype: torch.dtype, prior_layers: int = 24) -> ShapEPipeline:
    """openai/shap-e at its real widths with random weights, built on `device` (CLIP ViT-L/14 text encoder)."""
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = make_bpe_tokenizer(Path(folder) / "tokenizer")
    text = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                          num_attention_heads=12, max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu",
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id)
    with torch.device(device):
        pipeline = ShapEPipeline(prior=PriorTransformer(**{**SHAP_E_PRIOR, "num_layers": prior_layers}),
                                 text_encoder=CLIPTextModelWithProjection(text), tokenizer=tokenizer,
                                 scheduler=shap_e_scheduler(), shap_e_renderer=give_surface(ShapERenderer()))
    pipeline.to(dtype=dtype)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


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


@torch.no_grad()
def give_surface(renderer: ShapERenderer, samples: int = 20000) -> ShapERenderer:
    """Make a randomly initialised renderer decode a smooth closed surface (see the module docstring)."""
    projections = renderer.params_proj
    for name, parameter in projections.named_parameters():
        if name.endswith("weight"):
            parameter.zero_()
    shapes = [tuple(shape) for shape in projections.config.param_shapes]
    first_projection = next(iter(projections.projections.values())).proj
    first = first_projection.bias.view(*shapes[0])
    first[:, POSITION_FEATURES:] = 0  # the raw position only, no sin/cos features: a smooth surface, a small mesh
    tokens = sum(rows for rows, _ in shapes)
    device = first.device
    for name, value in projections(torch.zeros(1, tokens, first_projection.in_features, device=device, dtype=first.dtype)).items():
        renderer.mlp.get_parameter(name.removeprefix("nerstf.")).copy_(value[0])
    points = torch.rand(1, samples, 3, device=device, dtype=first.dtype) * 2 - 1
    sdf = torch.atanh(renderer.mlp(position=points, direction=None, ts=None, nerf_level="fine",
                                   rendering_mode="stf").signed_distance.float().clamp(-0.999, 0.999))
    renderer.mlp.mlp[-1].bias[0] -= sdf.median().to(first.dtype)
    cases, masks = marching_cubes_table()
    renderer.mesh_decoder.cases.copy_(cases.to(device))
    renderer.mesh_decoder.masks.copy_(masks.to(device))
    return renderer
