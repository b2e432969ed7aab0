"""Write each finished training stage into the package's weights folder, as soon as it finishes.

A stage's weights land in `weights/` (see `paths.py`) the moment the stage is done, so they can
be committed and the next stage can start in a later session from a fresh clone. `model/` is a
StableDiffusionPipeline-style diffusers folder whose UNet has no IP-Adapter; `ip_adapter/` holds
the adapter in the official SD-1.5 key layout and its CLIP image encoder. UNet and VAE are
stored in float16 (diffusers loads them as float32) to keep the package small.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import diffusers
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from torch import nn
from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from tv3dg.atomic import write_text_atomic
from tv3dg.errors import UserError
from tv3dg.priors.ip_adapter import attach_ip_adapter, read_ip_adapter
from tv3dg.priors.mini.architecture import (
    IMAGE_SIZE, LATENT_CHANNELS, LATENT_SIZE, build_image_processor, build_sample_scheduler, build_unet, image_encoder_input,
)
from tv3dg.priors.mini.checkpoint import load_training_state
from tv3dg.priors.mini.data import RenderPool, pool_latent_means
from tv3dg.priors.mini.ip_adapter import extract_ip_adapter_state, unet_without_ip_adapter
from tv3dg.priors.mini.module_io import save_module
from tv3dg.priors.mini.paths import WeightPaths
from tv3dg.priors.mini.prior_modules import PriorModules
from tv3dg.priors.mini.world import WorldObject, render_objects
from tv3dg.render.cameras import orbit_cameras

EXPORT_TOLERANCE = 2e-2
"""Max |difference| of noise predictions (unit scale) between the trained and the reloaded model;
the float16 storage of the UNet accounts for it."""

MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": diffusers.__version__,
    "feature_extractor": [None, None],
    "image_encoder": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


@torch.no_grad()
def latent_scaling_factor(vae: AutoencoderKL, pool: RenderPool) -> float:
    """1 / std of the pool's latent means: what SD-1.5's 0.18215 is for its own VAE."""
    return 1.0 / float(pool_latent_means(vae, pool).std())


def export_vae(vae: AutoencoderKL, pool: RenderPool, paths: WeightPaths) -> None:
    vae.register_to_config(scaling_factor=latent_scaling_factor(vae, pool))
    paths.vae.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.vae.parent) as tmp:
        vae.half().save_pretrained(tmp, safe_serialization=True)
        vae.float()
        if paths.vae.exists():
            shutil.rmtree(paths.vae)
        shutil.move(tmp, paths.vae)


def export_module(model: nn.Module, path: Path) -> None:
    """A small network's weights (classifier, shape prior), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_module(model, path)


@torch.no_grad()
def _noise_prediction(unet, text_encoder, tokenizer, image_encoder) -> torch.Tensor:
    """Noise predictions for a captioned and an uncaptioned, image-prompted and plain latent pair."""
    generator = torch.Generator().manual_seed(0)
    image = render_objects([WorldObject(1, 0, 1)], orbit_cameras(20.0, 30.0, 3.2, 40.0, IMAGE_SIZE)).rgb
    tokens = tokenizer(["a red striped cube back view", "a cube"], padding="max_length", max_length=tokenizer.model_max_length,
                       return_tensors="pt")
    embeds = image_encoder(pixel_values=image_encoder_input(image)).image_embeds
    embeds = torch.cat([embeds, torch.zeros_like(embeds)]).unsqueeze(1)
    latents = torch.randn(2, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE, generator=generator)
    return unet(latents, torch.tensor([300, 700]), encoder_hidden_states=text_encoder(tokens.input_ids).last_hidden_state,
                added_cond_kwargs={"image_embeds": [embeds]}).sample


@torch.no_grad()
def load_exported_prior(prior: PriorModules, paths: WeightPaths) -> None:
    """Load an exported prior back into the training modules, so a later stage can continue it
    (the appearance head is not shipped and keeps its fresh weights)."""
    if not (paths.model / "unet").is_dir() or not paths.ip_adapter.is_file():
        raise UserError(f"no exported prior in '{paths.model.parent}' to continue; run `tv3dg mini train --stage prior` first")
    unet = UNet2DConditionModel.from_pretrained(paths.model / "unet", torch_dtype=torch.float32)
    attach_ip_adapter(unet, read_ip_adapter(paths.ip_adapter))
    prior.unet.load_state_dict(unet.state_dict())
    prior.text_encoder.load_state_dict(CLIPTextModel.from_pretrained(paths.model / "text_encoder").state_dict())
    prior.image_encoder.load_state_dict(CLIPVisionModelWithProjection.from_pretrained(paths.image_encoder).state_dict())


def export_prior(run_dir: Path, paths: WeightPaths, stage: str = "prior", use_ema: bool = True) -> float:
    """Write a diffusion stage (`prior` or `prior_eyes`: UNet, text encoder, tokenizer, scheduler;
    IP-Adapter and image encoder) beside the shipped VAE, reload it as a user would and return the
    largest difference of its noise predictions from the trained model's (float16 storage of the
    UNet accounts for it)."""
    state = run_dir / f"{stage}_state.safetensors"
    if not state.is_file():
        raise UserError(f"run folder lacks {state.name}; run `tv3dg mini train --stage {stage}` until it finishes")
    tokenizer = CLIPTokenizer.from_pretrained(run_dir / "tokenizer")
    prior = PriorModules(tokenizer)
    load_training_state(state, {"ema" if use_ema else "model": prior}, None)
    model_dir, ip_dir = paths.model, paths.ip_adapter.parent
    # copied, not re-saved: `save_pretrained` of this transformers writes only tokenizer.json,
    # which the slow CLIPTokenizer cannot read; the run's folder has vocab.json and merges.txt too
    shutil.copytree(run_dir / "tokenizer", model_dir / "tokenizer", dirs_exist_ok=True)
    unet_without_ip_adapter(prior.unet, build_unet()).half().save_pretrained(model_dir / "unet", safe_serialization=True)
    prior.text_encoder.save_pretrained(model_dir / "text_encoder", safe_serialization=True)
    build_sample_scheduler().save_pretrained(model_dir / "scheduler")
    write_text_atomic(model_dir / "model_index.json", json.dumps(MODEL_INDEX, indent=2))
    ip_dir.mkdir(parents=True, exist_ok=True)
    save_file(extract_ip_adapter_state(prior.unet), str(paths.ip_adapter))
    prior.image_encoder.save_pretrained(paths.image_encoder, safe_serialization=True)
    build_image_processor(IMAGE_SIZE).save_pretrained(paths.image_encoder)

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    attach_ip_adapter(unet, read_ip_adapter(paths.ip_adapter))
    reloaded = _noise_prediction(unet.eval(), CLIPTextModel.from_pretrained(model_dir / "text_encoder").eval(),
                                 CLIPTokenizer.from_pretrained(model_dir / "tokenizer"),
                                 CLIPVisionModelWithProjection.from_pretrained(paths.image_encoder).eval())
    trained = _noise_prediction(prior.unet.eval(), prior.text_encoder.eval(), tokenizer, prior.image_encoder.eval())
    error = float((reloaded - trained).abs().max())
    if error > EXPORT_TOLERANCE:
        raise RuntimeError(f"exported weights predict differently from the trained model (max error {error:.4f})")
    return error
