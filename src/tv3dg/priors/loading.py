"""Find and load an SD-1.5-architecture diffusers folder, failing early with one-line errors.

"SD-1.5 architecture" here means what the losses rely on: a `UNet2DConditionModel` predicting
epsilon without SDXL's extra conditioning, an `AutoencoderKL`, a CLIP text encoder whose width
is the UNet's cross-attention width, a CLIP tokenizer and a scheduler config with the betas.
The bundled mini prior has the same layout, only smaller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from diffusers.utils import is_accelerate_available
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
from transformers import CLIPTextModel, CLIPTokenizer

from tv3dg.errors import UserError
from tv3dg.priors.registry import named_model

SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
LAYOUT_HINT = "a diffusers SD-1.5 folder has unet/ vae/ text_encoder/ tokenizer/ scheduler/"


@dataclass
class SD15Components:
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: DDIMScheduler


def resolve_model_dir(model: str) -> Path:
    """A named model (e.g. "mini", the bundled prior), a local folder or a Hugging Face id found in the local cache."""
    named = named_model(model)
    if named is not None:
        if not (named.model_dir / "unet").is_dir():
            raise UserError(
                f"the bundled {model} prior has no weights yet; {named.missing_hint} or pass --model PATH to SD-1.5 weights"
            )
        return named.model_dir
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise UserError(f"model '{model}' is a file, not a folder; {LAYOUT_HINT}")
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        try:
            return Path(snapshot_download(model, local_files_only=True))
        except (LocalEntryNotFoundError, HFValidationError):
            pass
    raise UserError(
        f"model '{model}' is neither a folder nor a model in the local Hugging Face cache; pass a path ({LAYOUT_HINT})"
    )


def _read_config(path: Path, folder: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"model folder '{folder}' lacks {path.relative_to(folder)}; {LAYOUT_HINT}") from None
    except (OSError, ValueError) as err:
        raise UserError(f"model folder '{folder}': {path.relative_to(folder)} is not readable JSON ({err})") from None


def check_sd15_layout(folder: Path) -> None:
    """Reject a folder that is not an SD-1.5-architecture diffusers model, naming the first problem."""

    def fail(reason: str) -> UserError:
        return UserError(f"model folder '{folder}' is not an SD-1.5-architecture diffusers model: {reason}")

    missing = [name for name in SUBFOLDERS if not (folder / name).is_dir()]
    if missing:
        raise fail(f"missing {', '.join(m + '/' for m in missing)} ({LAYOUT_HINT})")
    unet = _read_config(folder / "unet" / "config.json", folder)
    vae = _read_config(folder / "vae" / "config.json", folder)
    text = _read_config(folder / "text_encoder" / "config.json", folder)
    scheduler = _read_config(folder / "scheduler" / "scheduler_config.json", folder)
    if unet.get("_class_name") != "UNet2DConditionModel":
        raise fail(f"unet/ is a {unet.get('_class_name')}, expected UNet2DConditionModel")
    if unet.get("addition_embed_type") is not None or (folder / "text_encoder_2").is_dir():
        raise fail("it has SDXL-style extra conditioning (text_encoder_2 / addition_embed_type)")
    if vae.get("_class_name") != "AutoencoderKL":
        raise fail(f"vae/ is a {vae.get('_class_name')}, expected AutoencoderKL")
    if text.get("model_type") != "clip_text_model":
        raise fail(f"text_encoder/ is a {text.get('model_type')}, expected a CLIP text model")
    if unet.get("cross_attention_dim") != text.get("hidden_size"):
        raise fail(
            f"UNet cross-attention width {unet.get('cross_attention_dim')} != text-encoder width {text.get('hidden_size')}"
        )
    if unet.get("in_channels", 4) != vae.get("latent_channels", 4):
        raise fail(f"UNet input channels {unet.get('in_channels', 4)} != VAE latent channels {vae.get('latent_channels', 4)}")
    if scheduler.get("prediction_type", "epsilon") != "epsilon":
        raise fail(f"it predicts '{scheduler.get('prediction_type')}', the losses need an epsilon-prediction model")


def load_sd15_components(folder: Path) -> SD15Components:
    """Load the five components in float32 on the CPU (the prior moves and casts them)."""
    check_sd15_layout(folder)
    low_mem = is_accelerate_available()
    try:
        unet = UNet2DConditionModel.from_pretrained(folder / "unet", low_cpu_mem_usage=low_mem)
        vae = AutoencoderKL.from_pretrained(folder / "vae", low_cpu_mem_usage=low_mem)
        text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", dtype=torch.float32)
        tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
        scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(folder / "scheduler"))
    except (OSError, ValueError, RuntimeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"model folder '{folder}' could not be loaded: {first_line}") from None
    return SD15Components(unet, vae, text_encoder, tokenizer, scheduler)
