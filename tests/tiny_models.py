"""Tiny randomly initialised diffusers/transformers models, saved in the real on-disk layouts.

Tests build these, write them to a temp folder and load them back through the same loaders real
weights use, so the full SD-1.5 + IP-Adapter code path runs in seconds on a CPU:

- `make_tiny_sd_folder`: a diffusers model folder (unet/ vae/ text_encoder/ tokenizer/ scheduler/
  model_index.json) shaped like SD-1.5: the first up block has no attention, the others do.
- `make_tiny_ip_adapter`: an IP-Adapter `.safetensors` file in the official SD-1.5 key layout plus
  an `image_encoder/` folder (CLIPVisionModelWithProjection + preprocessor_config.json) beside it.
- `make_tiny_tokenizer`: a byte-level BPE CLIPTokenizer built offline from a word list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

TEXT_DIM = 32  # text-encoder width = UNet cross-attention width
IMAGE_EMBED_DIM = 32  # CLIP vision projection width = IP-Adapter image-embedding width
IP_TOKENS = 4  # image tokens per image, as in the official SD-1.5 IP-Adapter
WORDS = (
    "a an the of and with in on photo dslr picture render drawing painting style "
    "front side back overhead view red green blue yellow white black orange purple "
    "cube sphere cone cylinder torus dog cat bunny golden retriever standing lettuce "
    "striped dotted wooden metal glass shiny matte blurry low quality ugly"
).split()


def _bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character table of byte-level BPE (the CLIP/GPT-2 alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


def make_tiny_tokenizer(folder: Path, words: tuple[str, ...] = tuple(WORDS), max_length: int = 77) -> CLIPTokenizer:
    """Write vocab.json + merges.txt for a CLIP-style BPE over `words` and load it back.

    Every byte is in the vocabulary (alone and with `</w>`), so any text tokenises; the listed
    words merge into single tokens.
    """
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = list(_bytes_to_unicode().values())
    vocab_list = alphabet + [c + "</w>" for c in alphabet]
    merges: list[tuple[str, str]] = []
    for word in dict.fromkeys(words):
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            if pair not in merges:
                merges.append(pair)
            parts = [parts[0] + parts[1]] + parts[2:]
    for left, right in merges:
        if left + right not in vocab_list:
            vocab_list.append(left + right)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(
        vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=max_length
    )
    tokenizer.save_pretrained(folder)
    return CLIPTokenizer.from_pretrained(folder)


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
    tokenizer = make_tiny_tokenizer(root / "tokenizer")
    tiny_unet(camera_conditioned, sample_size=latent_size).save_pretrained(root / "unet")
    tiny_vae(sample_size=latent_size * 2).save_pretrained(root / "vae")
    tiny_text_encoder(tokenizer).save_pretrained(root / "text_encoder")
    DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1,
    ).save_pretrained(root / "scheduler")
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDIMScheduler"],
    }
    (root / "model_index.json").write_text(json.dumps(model_index, indent=2), encoding="utf-8")
    return root


def ip_adapter_state_dict(unet: UNet2DConditionModel, image_embed_dim: int = IMAGE_EMBED_DIM, std: float = 0.2) -> dict[str, torch.Tensor]:
    """Random IP-Adapter weights in the official SD-1.5 key layout for `unet`.

    `ip_adapter.{k}` counts over all of the UNet's attention processors in order, so the
    cross-attention ones (attn2) get the odd indices 1, 3, 5, ... as in the released checkpoints.
    """
    cross_dim = unet.config.cross_attention_dim
    weights = {
        "image_proj.proj.weight": torch.randn(IP_TOKENS * cross_dim, image_embed_dim) * std,
        "image_proj.proj.bias": torch.randn(IP_TOKENS * cross_dim) * std,
        "image_proj.norm.weight": 1.0 + torch.randn(cross_dim) * std,
        "image_proj.norm.bias": torch.randn(cross_dim) * std,
    }
    modules = dict(unet.named_modules())
    for index, name in enumerate(unet.attn_processors):
        if not name.endswith("attn2.processor"):
            continue
        hidden = modules[name.removesuffix(".processor")].to_k.out_features
        weights[f"ip_adapter.{index}.to_k_ip.weight"] = torch.randn(hidden, cross_dim) * std
        weights[f"ip_adapter.{index}.to_v_ip.weight"] = torch.randn(hidden, cross_dim) * std
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
    preprocessor = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True, "size": {"shortest_edge": image_size},
        "do_center_crop": True, "crop_size": {"height": image_size, "width": image_size},
        "do_normalize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255, "do_convert_rgb": True,
    }
    (encoder_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2), encoding="utf-8")
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
