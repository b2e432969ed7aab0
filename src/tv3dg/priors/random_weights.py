"""Stable Diffusion 1.5 + IP-Adapter SD-1.5 at their real architecture, with random weights.

No real weights can be downloaded where this project is built and tested, but the architectures
are public: random weights of the real shapes exercise every tensor shape, dtype and memory
path that real weights do (the numbers they produce mean nothing). `write_random_sd15` writes

    ROOT/stable-diffusion-v1-5/   unet/ vae/ text_encoder/ tokenizer/ scheduler/ model_index.json
    ROOT/IP-Adapter/models/       ip-adapter_sd15.safetensors (official key layout), image_encoder/

in the layouts of `runwayml/stable-diffusion-v1-5` and `h94/IP-Adapter`, so the same loaders
read them. `Depth` can reduce the number of layers (never a width) for a test that must fit a
small CI machine. Models are built on the meta device and filled with normals of std
1/sqrt(3 fan_in) (the variance of torch's default init), which is seconds instead of minutes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from safetensors.torch import save_file
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, CLIPVisionConfig, CLIPVisionModelWithProjection

from tv3dg.priors.ip_adapter import CLIP_MEAN, CLIP_STD

IP_TOKENS = 4  # image tokens per image in the base SD-1.5 IP-Adapter
PUBLISHED_PARAMETERS = {  # parameter counts of the released checkpoints
    "unet": 859_520_964,  # runwayml/stable-diffusion-v1-5 unet
    "vae": 83_653_863,  # its AutoencoderKL
    "text_encoder": 123_060_480,  # CLIP ViT-L/14 text model
    "image_encoder": 632_076_800,  # h94/IP-Adapter models/image_encoder (CLIP ViT-H/14 vision + projection)
}
TOLERANCE = 0.01  # relative difference from a published count that is reported
WORDS = (
    "a an the of and with in on photo dslr picture render drawing painting style front side back overhead view "
    "red green blue yellow white black orange purple cube sphere cone cylinder torus dog cat corgi bunny golden "
    "retriever standing lettuce striped dotted checkered wooden metal glass shiny matte blurry low quality "
    "unrealistic oversaturated deformed"
).split()


@dataclass(frozen=True)
class Depth:
    """Layers of each model; `FULL` is SD-1.5 / ViT-H as released. Widths are never reduced."""

    unet_layers_per_block: int = 2
    vae_layers_per_block: int = 2
    text_layers: int = 12
    vision_layers: int = 32

    @property
    def full(self) -> bool:
        return self == FULL


FULL = Depth()


def unet_config(depth: Depth = FULL) -> dict:
    """runwayml/stable-diffusion-v1-5 unet/config.json (64x64 latents, 8 heads, cross-attention 768)."""
    return dict(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=depth.unet_layers_per_block,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0,
    )


def vae_config(depth: Depth = FULL) -> dict:
    """Its AutoencoderKL: 128/256/512/512 channels, 4 latent channels, factor 8, scaling 0.18215."""
    return dict(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=512, scaling_factor=0.18215,
        block_out_channels=(128, 256, 512, 512), layers_per_block=depth.vae_layers_per_block, norm_num_groups=32,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )


def text_config(tokenizer: CLIPTokenizer, depth: Depth = FULL) -> CLIPTextConfig:
    """CLIP ViT-L/14's text tower (the full 49408-token embedding; our offline tokenizer uses a few of them)."""
    return CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=depth.text_layers,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def vision_config(depth: Depth = FULL) -> CLIPVisionConfig:
    """CLIP ViT-H/14's vision tower with its 1024-d projection (IP-Adapter SD-1.5's image encoder)."""
    return CLIPVisionConfig(
        hidden_size=1280, intermediate_size=5120, num_hidden_layers=depth.vision_layers, num_attention_heads=16,
        image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu",
    )


def sd15_scheduler() -> DDIMScheduler:
    """DDIM with SD-1.5's training betas (scaled linear 0.00085 .. 0.012 over 1000 steps)."""
    return DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    )


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


def make_bpe_tokenizer(folder: Path, words: tuple[str, ...] = tuple(WORDS), max_length: int = 77) -> CLIPTokenizer:
    """Write vocab.json + merges.txt for a CLIP-style BPE over `words` and load it back (no download).

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
    tokenizer = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=max_length)
    tokenizer.save_pretrained(folder)
    return CLIPTokenizer.from_pretrained(folder)


def ip_adapter_shapes(unet: UNet2DConditionModel, image_embed_dim: int) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of an IP-Adapter for `unet` in the official key layout.

    `ip_adapter.{k}` counts over all of the UNet's attention processors in order, so the
    cross-attention ones (attn2) get the odd indices 1, 3, 5, ... as in the released checkpoints.
    """
    cross_dim = unet.config.cross_attention_dim
    shapes = {
        "image_proj.proj.weight": (IP_TOKENS * cross_dim, image_embed_dim),
        "image_proj.proj.bias": (IP_TOKENS * cross_dim,),
        "image_proj.norm.weight": (cross_dim,),
        "image_proj.norm.bias": (cross_dim,),
    }
    modules = dict(unet.named_modules())
    for index, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            hidden = modules[name.removesuffix(".processor")].to_k.out_features
            shapes[f"ip_adapter.{index}.to_k_ip.weight"] = (hidden, cross_dim)
            shapes[f"ip_adapter.{index}.to_v_ip.weight"] = (hidden, cross_dim)
    return shapes


def _random_fill(name: str, tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Biases 0, norm scales 1, matrices and kernels N(0, 1/(3 fan_in))."""
    with torch.no_grad():
        if tensor.ndim == 1:
            return tensor.fill_(1.0 if name.endswith("weight") else 0.0)
        fan_in = math.prod(tensor.shape[1:])
        return tensor.normal_(0.0, 1.0 / math.sqrt(3 * fan_in), generator=generator)


def random_module(build: Callable[[], nn.Module], dtype: torch.dtype, generator: torch.Generator) -> nn.Module:
    """Build on the meta device (no init cost), allocate in `dtype` on the CPU, fill with random normals."""
    with torch.device("meta"):
        module = build().type(dtype)  # Module.type: diffusers' `.to(dtype)` warns about float32 modules it has none of
    module = module.to_empty(device="cpu")
    for name, parameter in module.named_parameters():
        _random_fill(name, parameter, generator)
    return module


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class RandomSD15:
    """Where the folders were written and each model's parameter count."""

    model_dir: Path
    ip_adapter: Path
    image_encoder: Path
    parameters: dict[str, int]

    def count_report(self) -> list[str]:
        """One line per model: its count, the published one, and whether they differ by more than 1%."""
        lines = []
        for name, count in self.parameters.items():
            published = PUBLISHED_PARAMETERS[name]
            diff = (count - published) / published
            verdict = "DIFFERS by more than 1%" if abs(diff) > TOLERANCE else "matches within 1%"
            lines.append(f"{name}: {count:,} parameters, published {published:,} ({diff:+.2%}, {verdict})")
        return lines


def write_random_sd15(root: Path, depth: Depth = FULL, seed: int = 0, dtype: torch.dtype = torch.float16) -> RandomSD15:
    """Write the SD-1.5 folder and the IP-Adapter files under `root`, one model in memory at a time."""
    generator = torch.Generator().manual_seed(seed)
    model_dir = root / "stable-diffusion-v1-5"
    adapter_dir = root / "IP-Adapter" / "models"
    model_dir.mkdir(parents=True, exist_ok=True)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    tokenizer = make_bpe_tokenizer(model_dir / "tokenizer")

    def write(name: str, build: Callable[[], nn.Module], folder: Path) -> nn.Module:
        module = random_module(build, dtype, generator)
        counts[name] = count_parameters(module)
        module.save_pretrained(folder)
        return module

    unet = write("unet", lambda: UNet2DConditionModel(**unet_config(depth)), model_dir / "unet")
    shapes = ip_adapter_shapes(unet, image_embed_dim=1024)
    del unet
    adapter = {name: _random_fill(name, torch.empty(shape, dtype=dtype), generator) for name, shape in shapes.items()}
    save_file(adapter, str(adapter_dir / "ip-adapter_sd15.safetensors"))
    del adapter
    write("vae", lambda: AutoencoderKL(**vae_config(depth)), model_dir / "vae")
    write("text_encoder", lambda: CLIPTextModel(text_config(tokenizer, depth)), model_dir / "text_encoder")
    encoder_dir = adapter_dir / "image_encoder"
    write("image_encoder", lambda: CLIPVisionModelWithProjection(vision_config(depth)), encoder_dir)
    write_clip_preprocessor(encoder_dir, 224)
    sd15_scheduler().save_pretrained(model_dir / "scheduler")
    write_model_index(model_dir)
    return RandomSD15(model_dir, adapter_dir / "ip-adapter_sd15.safetensors", encoder_dir, counts)


def write_model_index(model_dir: Path) -> None:
    """model_index.json of a StableDiffusionPipeline folder with a DDIM scheduler."""
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDIMScheduler"],
    }
    (model_dir / "model_index.json").write_text(json.dumps(model_index, indent=2), encoding="utf-8")


def write_clip_preprocessor(folder: Path, image_size: int) -> None:
    """preprocessor_config.json of a CLIPImageProcessor at `image_size` (resize, centre crop, CLIP mean/std)."""
    config = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True, "size": {"shortest_edge": image_size},
        "do_center_crop": True, "crop_size": {"height": image_size, "width": image_size},
        "do_normalize": True, "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD),
        "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255, "do_convert_rgb": True,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
