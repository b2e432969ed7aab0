"""IP-Adapter SD-1.5: find the checkpoint and its CLIP image encoder, attach them, set per-layer scales.

The checkpoint is read from `.safetensors` only (never unpickled) in the official key layout
(`image_proj.proj/norm.*`, `ip_adapter.{k}.to_k_ip/to_v_ip.weight` with k counting the UNet's
attention processors, cross-attention ones being the odd k) and attached with diffusers' own
`UNet2DConditionModel._load_ip_adapter_weights`, which installs `IPAdapterAttnProcessor2_0` on
every cross-attention layer. The "attention fusion" of a layer is its processor's `scale`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor
from transformers import CLIPVisionModelWithProjection

from tv3dg.errors import UserError
from tv3dg.priors.registry import named_model, named_models
from tv3dg.priors.unet_layers import cross_attention_blocks, matches_block

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
ATTN_KEY = re.compile(r"^(\d+)\.(to_k_ip|to_v_ip)\.weight$")


@dataclass
class ClipPreprocess:
    """What CLIPImageProcessor would do, as numbers (applied to tensors, differentiably)."""

    size: int  # resize the shortest edge to this
    crop: int  # then centre-crop a square of this size
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD


def resolve_ip_adapter(spec: str) -> Path:
    """A `.safetensors` path, a named model's adapter ("mini"), or `owner/repo/path/in/repo.safetensors` in the local HF cache."""
    named = named_model(spec)
    if named is not None and named.ip_adapter is not None:
        if not named.ip_adapter.is_file():
            raise UserError(f"the bundled {spec} IP-Adapter has no weights yet; {named.missing_hint} or pass --ip-adapter PATH")
        return named.ip_adapter
    path = Path(spec).expanduser()
    if not path.exists() and spec.count("/") >= 2 and not spec.startswith((".", "/", "~")):
        owner, repo, filename = spec.split("/", 2)
        try:
            path = Path(hf_hub_download(f"{owner}/{repo}", filename, local_files_only=True))
        except (LocalEntryNotFoundError, HFValidationError):
            pass
    if not path.is_file():
        raise UserError(f"IP-Adapter file '{spec}' does not exist; pass the path of e.g. ip-adapter_sd15.safetensors")
    if path.suffix != ".safetensors":
        raise UserError(f"IP-Adapter file '{spec}' is not .safetensors; use ip-adapter_sd15.safetensors (pickled .bin files are not read)")
    return path


def resolve_image_encoder(ip_adapter: Path, image_encoder: str | None) -> Path:
    """The given folder, or by default the named model's encoder or `image_encoder/` next to the IP-Adapter file."""
    if image_encoder is None:
        folder = _named_image_encoder(ip_adapter) or ip_adapter.parent / "image_encoder"
        if not (folder / "config.json").is_file():
            raise UserError(
                f"IP-Adapter '{ip_adapter}' needs its CLIP image encoder, but '{folder}' has none; pass --image-encoder FOLDER"
            )
        return folder
    folder = Path(image_encoder).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"image encoder '{image_encoder}' is not a CLIPVisionModelWithProjection folder (no config.json)")
    return folder


def _named_image_encoder(ip_adapter: Path) -> Path | None:
    """The image encoder registered with the named model whose adapter is `ip_adapter`."""
    return next((m.image_encoder_dir for m in named_models() if m.ip_adapter == ip_adapter), None)


def split_ip_adapter_state(flat: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """The official flat layout -> diffusers' {"image_proj": ..., "ip_adapter": ...} form (other keys are dropped)."""
    state: dict[str, dict[str, Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        group, _, rest = key.partition(".")
        if group in state:
            state[group][rest] = value
    return state


def read_ip_adapter(path: Path) -> dict[str, dict[str, Tensor]]:
    """Read a `.safetensors` checkpoint (never a pickle) into the loader's nested form."""
    try:
        return split_ip_adapter_state(load_file(str(path), device="cpu"))
    except (SafetensorError, OSError) as err:
        raise UserError(f"IP-Adapter file '{path}' is not a readable safetensors file ({err})") from None


def check_ip_adapter_fits(state: dict[str, dict[str, Tensor]], unet: UNet2DConditionModel, path: Path) -> None:
    """Check the official base-adapter layout against this UNet before diffusers touches it."""

    def fail(reason: str) -> UserError:
        return UserError(f"IP-Adapter '{path}' does not fit this model: {reason}; use an IP-Adapter SD-1.5 checkpoint for it")

    proj = state["image_proj"]
    if set(proj) != {"proj.weight", "proj.bias", "norm.weight", "norm.bias"}:
        raise fail(f"image_proj keys {sorted(proj)} are not the base adapter's proj/norm")
    cross_dim = unet.config.cross_attention_dim
    if proj["proj.weight"].shape[0] != 4 * cross_dim or proj["norm.weight"].shape[0] != cross_dim:
        raise fail(f"its image tokens have width {proj['norm.weight'].shape[0]}, the UNet's cross-attention has {cross_dim}")
    modules = dict(unet.named_modules())
    expected = {
        index: modules[name.removesuffix(".processor")].to_k.out_features
        for index, name in enumerate(unet.attn_processors)
        if name.endswith("attn2.processor")
    }
    found: dict[int, set[str]] = {}
    for key, tensor in state["ip_adapter"].items():
        match = ATTN_KEY.match(key)
        if not match or int(match.group(1)) not in expected:
            raise fail(f"unexpected key 'ip_adapter.{key}'")
        index = int(match.group(1))
        if tuple(tensor.shape) != (expected[index], cross_dim):
            raise fail(f"ip_adapter.{key} has shape {tuple(tensor.shape)}, expected {(expected[index], cross_dim)}")
        found.setdefault(index, set()).add(match.group(2))
    if set(found) != set(expected) or any(len(v) != 2 for v in found.values()):
        raise fail(f"it has weights for {len(found)} cross-attention layers, the UNet has {len(expected)}")


def attach_ip_adapter(unet: UNet2DConditionModel, state: dict[str, dict[str, Tensor]]) -> None:
    """Install IP-Adapter processors and the image projection with diffusers' own loader."""
    unet._load_ip_adapter_weights([state], low_cpu_mem_usage=False)


def load_ip_adapter(unet: UNet2DConditionModel, path: Path) -> int:
    """Read, check and attach the checkpoint at `path`; returns the image-embedding width."""
    state = read_ip_adapter(path)
    check_ip_adapter_fits(state, unet, path)
    attach_ip_adapter(unet, state)
    return int(state["image_proj"]["proj.weight"].shape[1])


def load_image_encoder(folder: Path, embed_dim: int | None) -> tuple[CLIPVisionModelWithProjection, ClipPreprocess]:
    """The CLIP image encoder and its preprocessing (from preprocessor_config.json when present)."""
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(folder)
    except (OSError, ValueError) as err:
        raise UserError(f"image encoder '{folder}' could not be loaded ({str(err).splitlines()[0]})") from None
    if embed_dim is not None and encoder.config.projection_dim != embed_dim:
        raise UserError(
            f"image encoder '{folder}' gives {encoder.config.projection_dim}-d embeddings, the IP-Adapter expects {embed_dim}; "
            "pass the encoder that came with the adapter"
        )
    image_size = encoder.config.image_size
    preprocess = ClipPreprocess(size=image_size, crop=image_size)
    config_path = folder / "preprocessor_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        size = config.get("size", image_size)
        crop = config.get("crop_size", image_size)
        preprocess = ClipPreprocess(
            size=int(size.get("shortest_edge", image_size)) if isinstance(size, dict) else int(size),
            crop=int(crop.get("height", image_size)) if isinstance(crop, dict) else int(crop),
            mean=tuple(config.get("image_mean", CLIP_MEAN)),
            std=tuple(config.get("image_std", CLIP_STD)),
        )
    return encoder, preprocess


def default_style_blocks(unet: UNet2DConditionModel) -> list[str]:
    """The style blocks of the "style" preset: the first up block with cross-attention.

    For SD-1.5 that is `up_blocks.1` (`up_blocks.0` has no attention); the same rule holds for
    smaller UNets with fewer blocks.
    """
    ups = [name for name in cross_attention_blocks(unet) if name.startswith("up_blocks.")]
    return ups[:1]


def ip_layer_scales(
    unet: UNet2DConditionModel, mode: str, scale: float, style_blocks: list[str] | None
) -> dict[str, float]:
    """Per cross-attention layer scale: `scale` everywhere ("texture") or on the style blocks only ("style")."""
    names = [n for n, p in unet.attn_processors.items() if isinstance(p, IPAdapterAttnProcessor2_0)]
    if mode == "texture":
        return {name: scale for name in names}
    blocks = default_style_blocks(unet) if style_blocks is None else list(style_blocks)
    for block in blocks:
        if not any(matches_block(name, block) for name in names):
            raise UserError(
                f"style block '{block}' has no IP-Adapter cross-attention in this UNet; choose from {cross_attention_blocks(unet)}"
            )
    return {name: scale if any(matches_block(name, b) for b in blocks) else 0.0 for name in names}


def set_ip_layer_scales(unet: UNet2DConditionModel, scales: dict[str, float]) -> None:
    processors = unet.attn_processors
    for name, value in scales.items():
        processors[name].scale = [value]
