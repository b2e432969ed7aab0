"""`generate --config sd15` on weights of SD-1.5 + IP-Adapter SD-1.5's real widths, so a shape or
dtype mismatch of the real path fails here rather than on a user's GPU.

What is real: every width and head count (UNet 320/640/1280/1280 channels, 8 heads, cross-attention
768; VAE 128/256/512/512 with 4 latent channels; CLIP ViT-L/14 text width 768 and its 49408-token
embedding; CLIP ViT-H/14 vision width 1280, 16 heads, 224 px images in 14 px patches, projection
1024; the IP-Adapter's 1024 -> 4 x 768 image tokens and its to_k_ip/to_v_ip on every
cross-attention layer), the four UNet levels, the float16 files and the official key layouts.
What is reduced, so that the test fits a 2-core CI machine in well under 3 minutes and a few GB:
the depth only, i.e. 1 resnet (+ transformer) per UNet down block instead of 2 (2 per up block instead of 3),
1 instead of 2 per VAE block, 1 text-encoder layer instead of 12 and 1 ViT layer instead of 32;
and the prior runs at 64 px (8x8 latents) instead of 512 px. The full-depth folder is what
`benchmarks/sd15_scale.py` runs.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPVisionModelWithProjection

from tv3dg.pipeline import run as run_module
from tv3dg.pipeline.config import build_config
from tv3dg.priors.random_weights import (
    PUBLISHED_PARAMETERS,
    RandomSD15,
    count_parameters,
    make_bpe_tokenizer,
    text_config,
    unet_config,
    vae_config,
    vision_config,
)

pytestmark = pytest.mark.slow


def test_full_depth_configs_have_the_published_parameter_counts(tmp_path):
    """Built on the meta device: exact counts without allocating 1.7B parameters."""
    tokenizer = make_bpe_tokenizer(tmp_path / "tokenizer")
    with torch.device("meta"):
        counts = {
            "unet": count_parameters(UNet2DConditionModel(**unet_config())),
            "vae": count_parameters(AutoencoderKL(**vae_config())),
            "text_encoder": count_parameters(CLIPTextModel(text_config(tokenizer))),
            "image_encoder": count_parameters(CLIPVisionModelWithProjection(vision_config())),
        }
    assert counts == PUBLISHED_PARAMETERS


@pytest.fixture
def weights(reduced_sd15) -> RandomSD15:
    return reduced_sd15  # written once per session (tests/conftest.py)


def test_sd15_preset_runs_vpcsm_with_pag_and_sgc_at_the_real_widths(weights, tmp_path):
    flags = {"prompt": "a DSLR photo of a corgi",
             "prior": {"model": str(weights.model_dir), "ip_adapter": str(weights.ip_adapter)}}
    config = build_config("sd15", flags, [
        "steps=2", "prior.device=cpu", "prior.dtype=float32", "prior.resolution=64",
        "camera.resolution=32", "camera.views_per_step=1", "init.kind=sphere", "init.num_points=500",
        "sgc.start_step=0", "sgc.num_views=2", "sgc.views_per_step=1", "sgc.sample_steps=1",
        "visual_prompt.sample_steps=1", "checkpoint_every=2",
        "export.turntable_frames=2", "export.turntable_resolution=32", "export.views=2", "export.mesh.resolution=32",
    ])
    assert config.distill.loss == "vpcsm" and config.distill.pag_scale > 0 and config.sgc.enabled
    generation = run_module.Generation(config, tmp_path / "run", resume=False, progress=False)
    prior = generation.prior
    assert prior.image_encoder.config.hidden_size == 1280 and prior.image_encoder.config.projection_dim == 1024
    assert prior.unet.encoder_hid_proj.image_projection_layers[0].image_embeds.weight.shape == (4 * 768, 1024)
    assert prior.pag_modules and prior.has_image_prompt
    result = generation.run()

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["nonfinite_steps"] == 0
    losses = metrics["losses"]
    assert {"distill", "sgc_semantic", "sgc_patch", "sgc_mask"} <= set(losses)
    assert all(math.isfinite(v) for v in losses.values())
    k = config.distill.inversion_steps
    assert metrics["unet"]["calls_per_step"] == k + 1  # k inversion calls + one call on [c-, c+, c+ perturbed]
    assert metrics["unet"]["rows_per_step"] == k + 3
    assert result.metrics["num_gaussians"] > 0 and (tmp_path / "run" / "asset.ply").is_file()
