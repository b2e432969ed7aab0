"""Check the prior's weights from their configs and safetensors headers, before anything loads.

A wrong IP-Adapter or a truncated download otherwise shows up only after minutes of loading a
1.7B-parameter model. Here the UNet is built on the meta device from its `config.json` (shapes,
no memory), each `.safetensors` file is checked to hold as many bytes as its header promises,
and the adapter's tensor shapes come from its header. `generate` runs `check_prior_weights` before
it loads anything; `tv3dg doctor` runs the same steps one by one and reports each.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel

from tv3dg.errors import UserError
from tv3dg.priors.config import PriorConfig
from tv3dg.priors.ip_adapter import check_ip_adapter_fits, resolve_image_encoder, resolve_ip_adapter, split_ip_adapter_state
from tv3dg.priors.loading import check_sd15_layout, resolve_model_dir

WEIGHT_SUBFOLDERS = ("unet", "vae", "text_encoder")
HEADER_LIMIT = 100 * 2**20  # safetensors headers are JSON of at most 100 MB


@dataclass
class SafetensorsInfo:
    """What a safetensors header says: each tensor's dtype and shape."""

    path: Path
    tensors: dict[str, tuple[str, tuple[int, ...]]]

    @property
    def parameters(self) -> int:
        total = 0
        for _, shape in self.tensors.values():
            count = 1
            for size in shape:
                count *= size
            total += count
        return total


def read_safetensors_header(path: Path) -> SafetensorsInfo:
    """Parse the header and check that the file holds every byte it lists (a truncated download fails)."""
    try:
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise UserError(f"'{path}' is not a safetensors file (it has {len(prefix)} bytes); download it again")
            (length,) = struct.unpack("<Q", prefix)
            if length > HEADER_LIMIT:
                raise UserError(f"'{path}' is not a safetensors file (header of {length} bytes); download it again")
            header = json.loads(handle.read(length))
    except (OSError, ValueError) as err:
        raise UserError(f"'{path}' is not a readable safetensors file ({err}); download it again") from None
    header.pop("__metadata__", None)
    tensors, end = {}, 0
    for name, entry in header.items():
        tensors[name] = (entry["dtype"], tuple(entry["shape"]))
        end = max(end, entry["data_offsets"][1])
    size = path.stat().st_size
    if size < 8 + length + end:
        raise UserError(f"'{path}' is truncated: {size:,} bytes of {8 + length + end:,}; download it again")
    return SafetensorsInfo(path, tensors)


def check_weight_files(folder: Path) -> list[SafetensorsInfo]:
    """Every `.safetensors` file of a model subfolder is intact; a folder with no weights at all fails."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickles = sorted(p.name for p in folder.glob("*.bin"))
        found = f"only {', '.join(pickles)} (pickled, not read)" if pickles else "no weight file"
        raise UserError(f"'{folder}' has {found}; it needs its .safetensors weights")
    return [read_safetensors_header(path) for path in files]


def check_model_folder(folder: Path) -> None:
    """The SD-1.5 layout and configs (see `check_sd15_layout`), the tokenizer files and intact weights."""
    check_sd15_layout(folder)
    tokenizer = folder / "tokenizer"
    missing = [name for name in ("vocab.json", "merges.txt") if not (tokenizer / name).is_file()]
    if missing:
        raise UserError(f"model folder '{folder}': tokenizer/ lacks {', '.join(missing)}; copy the whole tokenizer/ folder")
    for name in WEIGHT_SUBFOLDERS:
        check_weight_files(folder / name)


def meta_unet(folder: Path) -> UNet2DConditionModel:
    """The UNet of `folder` built from its config on the meta device: every shape, no memory."""
    config = UNet2DConditionModel.load_config(folder / "unet")
    with torch.device("meta"):
        return UNet2DConditionModel.from_config(config)


def check_adapter_file(path: Path, unet: UNet2DConditionModel) -> int:
    """The adapter's header against this UNet's cross-attention layers; returns its image-embedding width."""
    info = read_safetensors_header(path)
    state = split_ip_adapter_state({name: torch.empty(shape, device="meta") for name, (_, shape) in info.tensors.items()})
    if "proj.weight" not in state["image_proj"] and any(key.startswith(("latents", "proj_in")) for key in state["image_proj"]):
        raise UserError(
            f"IP-Adapter '{path}' is a 'plus' adapter (a resampler over patch tokens); use the base ip-adapter_sd15.safetensors"
        )
    check_ip_adapter_fits(state, unet, path)
    return int(state["image_proj"]["proj.weight"].shape[1])


def check_image_encoder_folder(folder: Path, embed_dim: int) -> None:
    """The encoder's projection width equals the adapter's input width, and its weights are intact."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    width = config.get("projection_dim")
    if width != embed_dim:
        raise UserError(
            f"image encoder '{folder}' gives {width}-d embeddings, the IP-Adapter expects {embed_dim}; "
            "pass the encoder that came with the adapter (--image-encoder)"
        )
    check_weight_files(folder)


@dataclass
class PriorWeights:
    """Where the checked weights are (None where the config asks for none)."""

    model_dir: Path
    ip_adapter: Path | None
    image_encoder: Path | None


def check_prior_weights(config: PriorConfig) -> PriorWeights:
    """All weight checks of `config`, in order; the first problem raises a one-line `UserError`."""
    model_dir = resolve_model_dir(config.model)
    check_model_folder(model_dir)
    if config.ip_adapter is None:
        return PriorWeights(model_dir, None, None)
    adapter = resolve_ip_adapter(config.ip_adapter)
    embed_dim = check_adapter_file(adapter, meta_unet(model_dir))
    encoder = resolve_image_encoder(adapter, config.image_encoder)
    check_image_encoder_folder(encoder, embed_dim)
    return PriorWeights(model_dir, adapter, encoder)

