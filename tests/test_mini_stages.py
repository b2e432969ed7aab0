"""The mini prior's training stages, end to end at toy size: each stage writes its weights where the
next one (possibly in a later session) reads them, and the prior learns from captions with view words."""

from __future__ import annotations

import json
import math

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file
from transformers import CLIPTokenizer

from tv3dg.priors.mini.architecture import LATENT_CHANNELS, LATENT_SIZE
from tv3dg.priors.mini.data import load_pool
from tv3dg.priors.mini.checkpoint import load_training_state
from tv3dg.priors.mini.export import export_prior, load_exported_prior
from tv3dg.priors.mini.paths import WeightPaths
from tv3dg.priors.mini.prior_modules import PriorModules
from tv3dg.priors.mini.stages import train
from tv3dg.priors.mini.training import STAGES, TRAINING_PLAN, MiniTrainConfig, eye_region_weights, plain_words
from tv3dg.priors.mini.world import HIDDEN_EMBLEM_PX, VISIBLE_EMBLEM_PX


@pytest.mark.slow
def test_every_stage_runs_and_hands_its_weights_to_the_next(tmp_path):
    weights = tmp_path / "weights"
    config = MiniTrainConfig(
        pool_size=96, view_pool_size=64, vae_steps=2, vae_batch=4, classifier_steps=2, classifier_batch=8,
        shape_prior_steps=2, shape_prior_batch=2, prior_steps=2, prior_batch=6, prior_eyes_steps=2, weights_dir=str(weights),
    )
    assert train(tmp_path / "run", config, TRAINING_PLAN)
    run = tmp_path / "run"
    assert all((run / f"{stage}.done").is_file() for stage in STAGES)
    assert set(json.loads((run / "wall_times.json").read_text())) == set(STAGES)

    photos = load_pool(run / "pool.safetensors")
    assert photos.images.shape == (96, 3, 64, 64) and photos.images.dtype == torch.uint8
    # the eyes' pixel counts are the classifier's ground truth: both kinds of view occur
    views = load_pool(run / "view_pool.safetensors")
    assert (views.emblem_px >= VISIBLE_EMBLEM_PX).any() and (views.emblem_px < HIDDEN_EMBLEM_PX).any()
    # and their cover of each latent cell, which prior_eyes weighs up: none where no eye shows
    assert photos.emblem_mask.shape == (96, 1, LATENT_SIZE, LATENT_SIZE) and photos.emblem_mask.dtype == torch.uint8
    assert photos.emblem_mask[photos.emblem_px >= VISIBLE_EMBLEM_PX].amax(dim=(1, 2, 3)).min() > 0
    assert photos.emblem_mask[photos.emblem_px == 0].max() == 0
    # and, from well behind, the cover of their mirror image, where a second face would be drawn:
    # prior_eyes weighs both alike, so leaving a back bare counts as much as drawing a front
    behind = (torch.remainder(photos.azimuth_deg, 360.0) - 180.0).abs() < 30.0
    assert behind.any() and photos.back_emblem_mask[behind].amax(dim=(1, 2, 3)).min() > 0
    loss_weights = eye_region_weights(photos, behind.nonzero().squeeze(-1), 20.0)
    assert loss_weights.amax(dim=(1, 2, 3)).min() > 1 and photos.emblem_mask[behind].max() == 0

    stored = load_file(str(weights / "model" / "vae" / "diffusion_pytorch_model.safetensors"))
    assert {t.dtype for t in stored.values()} == {torch.float16}  # stored small
    vae = AutoencoderKL.from_pretrained(weights / "model" / "vae")
    assert vae.config.scaling_factor > 0
    # the posterior's std stayed where the stage holds it through its optimiser steps
    # (tolerance: the weights are stored in float16, whose step near 0.018 is about 1.5e-5)
    with torch.no_grad():
        posterior = vae.encode(photos.float_images(torch.arange(4)) * 2 - 1).latent_dist
    assert torch.allclose(posterior.std, torch.full_like(posterior.std, math.exp(0.5 * config.vae_logvar)), rtol=2e-3)
    latents = load_file(str(run / "latents.safetensors"))["latents"]
    assert latents.shape == (96, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE)
    assert (weights / "classifier.safetensors").is_file() and (weights / "shape_prior.safetensors").is_file()
    assert (run / "prior_state.safetensors").is_file()
    tokens = json.loads((run / "tokenizer" / "vocab.json").read_text())
    assert {"behind</w>", "pinstriped</w>", "octahedron</w>"} <= set(tokens)

    # the diffusion stage has landed beside the VAE in SD-1.5's layout, and reloads as it was trained
    paths = WeightPaths(weights)
    assert paths.ip_adapter.is_file() and (paths.image_encoder / "config.json").is_file()
    assert {"vocab.json", "merges.txt"} <= {p.name for p in (paths.model / "tokenizer").iterdir()}
    assert export_prior(run, paths) < 2e-2
    # prior_eyes continued the exported prior and exported in its place; loading the export back
    # gives its trained weights up to the UNet's float16 storage (relative rounding <= 2**-11)
    assert export_prior(run, paths, "prior_eyes") < 2e-2
    tokenizer = CLIPTokenizer.from_pretrained(run / "tokenizer")
    loaded, trained = PriorModules(tokenizer), PriorModules(tokenizer)
    load_exported_prior(loaded, paths)
    load_training_state(run / "prior_eyes_state.safetensors", {"ema": trained}, None)
    for name, value in trained.state_dict().items():
        if not name.startswith("appearance_head"):  # not shipped
            torch.testing.assert_close(loaded.state_dict()[name], value, rtol=1e-3, atol=1e-6, msg=name)
    unet = UNet2DConditionModel.from_pretrained(weights / "model" / "unet")
    assert unet.config.class_embed_type is None and unet.config.in_channels == LATENT_CHANNELS  # told no camera


def test_training_captions_are_the_text_the_generator_feeds_the_tokenizer():
    assert plain_words("A photo of a red cube, back view") == "a photo of a red cube back view"
    assert plain_words("a 3d render of a tiny egg") == "a 3d render of a tiny egg"
