"""Write a training run's weights into the shipped layout (see `paths.py`).

`model/` is a StableDiffusionPipeline-style diffusers folder whose UNet has no IP-Adapter;
`ip_adapter/` holds the adapter in the official SD-1.5 key layout and its CLIP image encoder.
UNet and VAE are stored in float16 (diffusers loads them as float32 unless told otherwise)
to keep the package small; everything else in float32. The whole folder is swapped in at once.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import diffusers
import torch
from safetensors.torch import load_file, save_file

from tv3dg.errors import UserError
from diffusers import UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from tv3dg.priors.camera_conditioning import camera_features
from tv3dg.priors.mini.architecture import build_image_processor, build_sample_scheduler, build_unet, build_vae, image_encoder_input
from tv3dg.priors.mini.checkpoint import load_training_state
from tv3dg.priors.ip_adapter import attach_ip_adapter, read_ip_adapter
from tv3dg.priors.mini.ip_adapter import extract_ip_adapter_state, unet_without_ip_adapter
from tv3dg.priors.mini.paths import WEIGHTS_DIR
from tv3dg.priors.mini.tokenizer import save_tokenizer
from tv3dg.priors.mini.training import PriorModules
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


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UserError(f"run folder lacks {path.name} ({what}); run `tv3dg mini train` until that stage has finished")
    return path


def _write_model(run_dir: Path, out: Path, use_ema: bool) -> PriorModules:
    model_dir = out / "model"
    tokenizer = save_tokenizer(model_dir / "tokenizer")
    latents = load_file(str(_require(run_dir / "latents.safetensors", "VAE latents")))
    vae = build_vae()
    load_training_state(_require(run_dir / "vae_state.safetensors", "VAE"), {"vae": vae}, None)
    vae.register_to_config(scaling_factor=float(latents["scaling_factor"]))
    vae.half().save_pretrained(model_dir / "vae", safe_serialization=True)

    prior = PriorModules(tokenizer)
    step = load_training_state(_require(run_dir / "prior_state.safetensors", "diffusion prior"), {"ema" if use_ema else "model": prior}, None)
    unet_without_ip_adapter(prior.unet, build_unet()).half().save_pretrained(model_dir / "unet", safe_serialization=True)
    prior.text_encoder.save_pretrained(model_dir / "text_encoder", safe_serialization=True)
    build_sample_scheduler().save_pretrained(model_dir / "scheduler")
    (model_dir / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2), encoding="utf-8")

    ip_dir = out / "ip_adapter"
    ip_dir.mkdir(parents=True, exist_ok=True)
    save_file(extract_ip_adapter_state(prior.unet), str(ip_dir / "ip-adapter_mini.safetensors"))
    prior.image_encoder.save_pretrained(ip_dir / "image_encoder", safe_serialization=True)
    build_image_processor().save_pretrained(ip_dir / "image_encoder")
    (out / "training_step.json").write_text(json.dumps({"prior_step": step, "ema": use_ema}), encoding="utf-8")
    return prior


def _noise_prediction(unet, text_encoder, tokenizer, image_encoder) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    image = render_objects([WorldObject(1, 0, 1)], orbit_cameras(20.0, 30.0, 3.2, 40.0, 32)).rgb
    tokens = tokenizer(["a red striped cube", "a cube"], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
    embeds = image_encoder(pixel_values=image_encoder_input(image)).image_embeds
    embeds = torch.cat([embeds, torch.zeros_like(embeds)]).unsqueeze(1)
    latents = torch.randn(2, 4, 8, 8, generator=generator)
    labels = camera_features(torch.tensor([20.0, 0.0]), torch.tensor([30.0, 90.0]))
    return unet(latents, torch.tensor([300, 700]), encoder_hidden_states=text_encoder(tokens.input_ids).last_hidden_state,
                class_labels=labels, added_cond_kwargs={"image_embeds": [embeds]}).sample


def verify_export(prior: PriorModules, weights_dir: Path) -> float:
    """Reload the written files with diffusers/transformers as a user would (IP-Adapter attached
    by diffusers' own loader) and check they predict what the trained model predicts."""
    unet = UNet2DConditionModel.from_pretrained(weights_dir / "model" / "unet")
    attach_ip_adapter(unet, read_ip_adapter(weights_dir / "ip_adapter" / "ip-adapter_mini.safetensors"))
    text_encoder = CLIPTextModel.from_pretrained(weights_dir / "model" / "text_encoder")
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(weights_dir / "ip_adapter" / "image_encoder")
    tokenizer = CLIPTokenizer.from_pretrained(weights_dir / "model" / "tokenizer")
    reloaded = _noise_prediction(unet.eval(), text_encoder.eval(), tokenizer, image_encoder.eval())
    trained = _noise_prediction(prior.unet.eval(), prior.text_encoder.eval(), tokenizer, prior.image_encoder.eval())
    error = float((reloaded - trained).abs().max())
    if error > EXPORT_TOLERANCE:
        raise RuntimeError(f"exported weights predict differently from the trained model (max error {error:.4f})")
    return error


def export_weights(run_dir: Path, weights_dir: Path = WEIGHTS_DIR, use_ema: bool = True) -> float:
    """Assemble every shipped file from `run_dir` and replace `weights_dir` with it.

    The shipped prior is the EMA of the weights; `use_ema=False` exports the raw weights, which
    are the better choice early in training while the EMA still remembers the initialisation.
    Returns the reload error of `verify_export`.
    """
    weights_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=weights_dir.parent, prefix=".weights.") as tmp:
        out = Path(tmp) / "weights"
        out.mkdir()
        with torch.no_grad():
            error = verify_export(_write_model(run_dir, out, use_ema), out)
        shutil.copyfile(_require(run_dir / "classifier.safetensors", "attribute classifier"), out / "classifier.safetensors")
        shutil.copyfile(_require(run_dir / "shape_prior.safetensors", "3D shape prior"), out / "shape_prior.safetensors")
        old = Path(tmp) / "old"
        if weights_dir.exists():
            weights_dir.rename(old)
        out.rename(weights_dir)
    return error
