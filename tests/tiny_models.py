"""Tiny randomly initialised diffusers/transformers models, saved in the real on-disk layouts.

Tests build these, write them to a temp folder and load them back through the same loaders real
weights use, so the full SD-1.5 + IP-Adapter code path runs in seconds on a CPU:

- `make_tiny_sd_folder`: a diffusers model folder (unet/ vae/ text_encoder/ tokenizer/ scheduler/
  model_index.json) shaped like SD-1.5: the first up block has no attention, the others do.
- `make_tiny_ip_adapter`: an IP-Adapter `.safetensors` file in the official SD-1.5 key layout plus
  an `image_encoder/` folder (CLIPVisionModelWithProjection + preprocessor_config.json) beside it.

The offline tokenizer and the IP-Adapter key layout come from `tv3dg.priors.random_weights`, which
builds the same folders at SD-1.5's full size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from tv3dg.priors.random_weights import (
    ip_adapter_shapes,
    make_bpe_tokenizer,
    sd15_scheduler,
    write_clip_preprocessor,
    write_model_index,
)

TEXT_DIM = 32  # text-encoder width = UNet cross-attention width
IMAGE_EMBED_DIM = 32  # CLIP vision projection width = IP-Adapter image-embedding width


def tiny_unet(camera_conditioned: bool = False, sample_size: int = 8) -> UNet2DConditionModel:
    """A 2-level UNet laid out like SD-1.5: cross-attention down/mid/up blocks, `up_blocks.0` plain."""
    extra = {"class_embed_type": "projection", "projection_class_embeddings_input_dim": 4} if camera_conditioned else {}
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=8,
        **extra,
    )


def tiny_vae(sample_size: int = 16) -> AutoencoderKL:
    """A VAE with a down-sampling factor of 2 and 4 latent channels."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=sample_size,
    )


def tiny_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_DIM,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def make_tiny_sd_folder(
    root: Path, camera_conditioned: bool = False, seed: int = 0, latent_size: int = 8
) -> Path:
    """Save a complete tiny SD-1.5-shaped diffusers folder under `root` and return it."""
    torch.manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    tokenizer = make_bpe_tokenizer(root / "tokenizer")
    tiny_unet(camera_conditioned, sample_size=latent_size).save_pretrained(root / "unet")
    tiny_vae(sample_size=latent_size * 2).save_pretrained(root / "vae")
    tiny_text_encoder(tokenizer).save_pretrained(root / "text_encoder")
    sd15_scheduler().save_pretrained(root / "scheduler")
    write_model_index(root)
    return root


def ip_adapter_state_dict(unet: UNet2DConditionModel, image_embed_dim: int = IMAGE_EMBED_DIM, std: float = 0.2) -> dict[str, torch.Tensor]:
    """Random IP-Adapter weights in the official SD-1.5 key layout for `unet`."""
    weights = {name: torch.randn(shape) * std for name, shape in ip_adapter_shapes(unet, image_embed_dim).items()}
    weights["image_proj.norm.weight"] += 1.0
    return weights


def make_tiny_ip_adapter(model_dir: Path, root: Path, seed: int = 0, image_size: int = 32) -> tuple[Path, Path]:
    """Save `root/ip-adapter_tiny.safetensors` and `root/image_encoder/` for the UNet in `model_dir`."""
    torch.manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    weight_path = root / "ip-adapter_tiny.safetensors"
    save_file(ip_adapter_state_dict(unet), str(weight_path))
    encoder_dir = root / "image_encoder"
    vision = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            image_size=image_size, patch_size=8, projection_dim=IMAGE_EMBED_DIM,
        )
    )
    vision.save_pretrained(encoder_dir)
    write_clip_preprocessor(encoder_dir, image_size)
    return weight_path, encoder_dir


@dataclass
class TinyWorld:
    """A tiny model folder plus a matching IP-Adapter file and image-encoder folder."""

    model_dir: Path
    ip_adapter: Path
    image_encoder: Path


def make_tiny_world(root: Path, camera_conditioned: bool = False, seed: int = 0) -> TinyWorld:
    model_dir = make_tiny_sd_folder(root / "model", camera_conditioned=camera_conditioned, seed=seed)
    ip_adapter, image_encoder = make_tiny_ip_adapter(model_dir, root / "ip_adapter", seed=seed + 1)
    return TinyWorld(model_dir, ip_adapter, image_encoder)


def point_mini_prior_at(monkeypatch, model_dir: Path) -> None:
    """Make the registered "mini" prior's weights folder `model_dir` for one test (e.g. an empty one)."""
    from dataclasses import replace

    from tv3dg.priors import registry
    from tv3dg.priors.config import MINI

    monkeypatch.setitem(registry.MODELS, MINI, replace(registry.named_model(MINI), model_dir=model_dir))
