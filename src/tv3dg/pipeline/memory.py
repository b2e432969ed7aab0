"""Peak memory of a generation run, estimated from shapes alone: no weights, no GPU, in seconds.

The models are built from their configs on the meta device. Weights count parameters times the
run's dtype size. Activations are counted by running the forward passes on meta tensors:
- the VAE encoder keeps its saved tensors for the backward pass, per view, when the step goes
  back through it (`distill.target_space=latent`);
- SGC runs the image encoder twice per reference view with gradients (global and patch features);
- the UNet runs without gradients: its work space is taken as three times its largest tensor
  (input, output and one intermediate alive at once) times the rows of its widest call;
- with `distill.target_space=image` the VAE decoder runs without gradients on every view, or on
  one at a time with `prior.vae_slicing`: three times its largest tensor as well.
The Gaussians cost their parameters, gradients and two Adam moments in float32 at
`densify.max_points` (the initial count when densification has no cap or does not run). The torch rasterizer keeps
the blending weights of every (pixel, Gaussian) pair it composites for its backward pass; this
is assumed to be `ASSUMED_PAIRS_PER_PIXEL` pairs of 8 bytes per pixel (gsplat keeps per-Gaussian
data only). A CUDA context costs `CUDA_CONTEXT` more.

`tv3dg doctor` compares this estimate with the device's free memory, and the memory table in
docs/gpu.md is `markdown_table()` of this module (`python -m tv3dg.pipeline.memory`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

from tv3dg.config import merge_overrides, from_dict, to_dict
from tv3dg.pipeline.config import GenerateConfig

GIB = 2**30
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
ASSUMED_PAIRS_PER_PIXEL = 64  # (pixel, Gaussian) pairs composited before early termination, an assumption
PAIR_BYTES = 8  # two float32 kept per pair (blending weight and odds)
TABLE_FLOATS = 32  # per Gaussian and view: projection, conic, colour, depth, their gradients
ADAM_COPIES = 4  # parameter, gradient, two moments
CUDA_CONTEXT = 0.5 * GIB
WORKSPACE_TENSORS = 3


def saved_tensor_bytes(module: nn.Module, run) -> int:
    """Bytes of the tensors autograd saves for the backward pass of `run()` (parameters and their views excluded)."""
    params = {id(p) for p in module.parameters()}
    seen: dict[int, torch.Tensor] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        base = tensor._base if tensor._base is not None else tensor
        if id(tensor) not in params and id(base) not in params:
            seen.setdefault(id(tensor), tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), torch.enable_grad():
        run()
    return sum(t.numel() * t.element_size() for t in seen.values())


def largest_tensor_bytes(module: nn.Module, run) -> int:
    """Bytes of the largest tensor any submodule of `module` takes or returns in `run()`, without gradients."""
    largest = 0

    def hook(_module, inputs, outputs):
        nonlocal largest
        values = list(inputs) + list(outputs if isinstance(outputs, tuple) else (outputs,))
        for value in values:
            if isinstance(value, torch.Tensor):
                largest = max(largest, value.numel() * value.element_size())

    handles = [sub.register_forward_hook(hook) for sub in module.modules()]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return largest


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class ModelShapes:
    """The prior's models on the meta device, and what the estimate measures on them (cached)."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder_parameters: int
    image_encoder: CLIPVisionModelWithProjection | None
    ip_adapter_parameters: int
    _cache: dict = field(default_factory=dict, repr=False)

    def _cached(self, key: tuple, compute) -> int:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @cached_property
    def parameters(self) -> dict[str, int]:
        return {
            "unet": count_parameters(self.unet) + self.ip_adapter_parameters,
            "vae": count_parameters(self.vae),
            "text_encoder": self.text_encoder_parameters,
            "image_encoder": count_parameters(self.image_encoder) if self.image_encoder is not None else 0,
        }

    def vae_encoder_saved(self, resolution: int, dtype: str) -> int:
        """Saved tensors of one view through the VAE encoder, with gradients."""

        def compute() -> int:
            vae = self.vae.type(TORCH_DTYPES[dtype])
            pixels = torch.empty(1, vae.config.in_channels, resolution, resolution, dtype=vae.dtype, device="meta",
                                 requires_grad=True)
            return saved_tensor_bytes(vae, lambda: vae.encode(pixels).latent_dist.mean)

        return self._cached(("vae_encoder", resolution, dtype), compute)

    def vae_decoder_largest(self, resolution: int, dtype: str) -> int:
        def compute() -> int:
            vae = self.vae.type(TORCH_DTYPES[dtype])
            factor = 2 ** (len(vae.config.block_out_channels) - 1)
            latents = torch.empty(1, vae.config.latent_channels, resolution // factor, resolution // factor,
                                  dtype=vae.dtype, device="meta")
            return largest_tensor_bytes(vae, lambda: vae.decode(latents))

        return self._cached(("vae_decoder", resolution, dtype), compute)

    def image_encoder_saved(self, dtype: str) -> int:
        """Saved tensors of one image through the image encoder, with gradients."""
        encoder = self.image_encoder
        if encoder is None:
            return 0

        def compute() -> int:
            model = encoder.to(TORCH_DTYPES[dtype])
            size = model.config.image_size
            pixels = torch.empty(1, 3, size, size, dtype=TORCH_DTYPES[dtype], device="meta", requires_grad=True)
            return saved_tensor_bytes(model, lambda: model(pixel_values=pixels).image_embeds)

        return self._cached(("image_encoder", dtype), compute)

    def unet_largest_per_row(self, latent_size: int, dtype: str) -> int:
        def compute() -> int:
            unet = self.unet.type(TORCH_DTYPES[dtype])
            config = unet.config
            sample = torch.empty(1, config.in_channels, latent_size, latent_size, dtype=unet.dtype, device="meta")
            context = torch.empty(1, 77, config.cross_attention_dim, dtype=unet.dtype, device="meta")
            extra = {}
            if config.class_embed_type == "projection":
                extra["class_labels"] = torch.empty(1, config.projection_class_embeddings_input_dim, dtype=unet.dtype,
                                                    device="meta")
            timestep = torch.zeros(1, dtype=torch.long, device="meta")
            return largest_tensor_bytes(unet, lambda: unet(sample, timestep, encoder_hidden_states=context, **extra))

        return self._cached(("unet", latent_size, dtype), compute)


def meta_shapes(unet: dict, vae: dict, text_encoder: dict, image_encoder: dict | None, ip_adapter_parameters: int) -> ModelShapes:
    """Models from config dicts (diffusers `config.json` contents, transformers config dicts) on the meta device."""
    with torch.device("meta"):
        unet_model = UNet2DConditionModel.from_config(unet)
        vae_model = AutoencoderKL.from_config(vae)
        text_parameters = count_parameters(CLIPTextModel(CLIPTextConfig(**text_encoder)))
        vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**image_encoder)) if image_encoder is not None else None
    return ModelShapes(unet_model, vae_model, text_parameters, vision, ip_adapter_parameters)


def shapes_from_folders(model_dir: Path, ip_adapter_parameters: int = 0, image_encoder: Path | None = None) -> ModelShapes:
    """Shapes of a diffusers SD-1.5-layout folder (and an image-encoder folder), from their config files."""

    def read(path: Path) -> dict:
        return json.loads(path.read_text(encoding="utf-8"))

    encoder = read(image_encoder / "config.json") if image_encoder is not None else None
    return meta_shapes(read(model_dir / "unet" / "config.json"), read(model_dir / "vae" / "config.json"),
                       read(model_dir / "text_encoder" / "config.json"), encoder, ip_adapter_parameters)


def sd15_shapes() -> ModelShapes:
    """SD-1.5 + IP-Adapter SD-1.5 as released (the architecture of `tv3dg.priors.random_weights`)."""
    from tv3dg.priors.random_weights import IP_TOKENS, unet_config, vae_config, vision_config

    text = {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
            "num_attention_heads": 12, "max_position_embeddings": 77, "projection_dim": 768}
    shapes = meta_shapes(unet_config(), vae_config(), text, vision_config().to_dict(), 0)
    cross = [name for name in shapes.unet.attn_processors if name.endswith("attn2.processor")]
    modules = dict(shapes.unet.named_modules())
    cross_dim = shapes.unet.config.cross_attention_dim
    embed = shapes.image_encoder.config.projection_dim
    adapter = IP_TOKENS * cross_dim * (embed + 1) + 2 * cross_dim
    adapter += sum(2 * modules[name.removesuffix(".processor")].to_k.out_features * cross_dim for name in cross)
    return replace(shapes, ip_adapter_parameters=adapter)


@dataclass
class MemoryEstimate:
    """Bytes per part of a run; `total` is what must fit."""

    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def gib(self, name: str | None = None) -> float:
        return (self.total if name is None else self.parts[name]) / GIB


def estimate_memory(config: GenerateConfig, shapes: ModelShapes, cuda: bool = True, gsplat: bool = False) -> MemoryEstimate:
    """Peak memory of `config` on these models (see the module docstring for each part)."""
    prior, dtype = config.prior, config.prior.dtype
    size = DTYPE_BYTES[dtype]
    has_adapter = prior.ip_adapter is not None
    params = shapes.parameters
    text_bytes = 0 if (prior.text_encoder_on_cpu and cuda) else params["text_encoder"] * size
    resolution = prior.resolution or int(shapes.vae.config.sample_size)
    factor = 2 ** (len(shapes.vae.config.block_out_channels) - 1)
    views = config.camera.views_per_step
    parts = {
        "weights: UNet + IP-Adapter": params["unet"] * size if has_adapter else (params["unet"] - shapes.ip_adapter_parameters) * size,
        "weights: VAE": params["vae"] * size,
        "weights: text encoder": text_bytes,
        "weights: image encoder": params["image_encoder"] * size if has_adapter else 0,
    }
    latent = config.distill.target_space == "latent"
    parts["VAE encoder activations for the backward pass"] = views * shapes.vae_encoder_saved(resolution, dtype) if latent else 0
    decoded = 0 if latent else shapes.vae_decoder_largest(resolution, dtype) * WORKSPACE_TENSORS * (1 if prior.vae_slicing else views)
    parts["VAE decoder work space (image target)"] = decoded
    sgc_views = config.sgc.views_per_step if config.sgc.enabled else 0
    parts["SGC: image encoder backward"] = 2 * sgc_views * shapes.image_encoder_saved(dtype) if has_adapter else 0
    rows = (3 if config.distill.pag_scale > 0 else 2) * views
    parts["UNet work space (no gradients)"] = WORKSPACE_TENSORS * rows * shapes.unet_largest_per_row(resolution // factor, dtype)
    densify = config.gaussians.densify
    densifies = densify.start_step < min(densify.stop_step, config.steps) and densify.max_points > 0
    points = max(densify.max_points, config.init.num_points) if densifies else config.init.num_points
    floats = 3 + 3 + 4 + 1 + 3 * (config.gaussians.sh_degree + 1) ** 2
    parts["Gaussians + Adam"] = points * floats * 4 * ADAM_COPIES
    render_views = views + sgc_views
    pixels = render_views * config.camera.resolution**2
    pairs = 0 if gsplat else pixels * ASSUMED_PAIRS_PER_PIXEL * PAIR_BYTES
    parts["rasterizer"] = render_views * points * TABLE_FLOATS * 4 + pairs
    parts["CUDA context"] = int(CUDA_CONTEXT) if cuda else 0
    return MemoryEstimate(parts)


ALTERNATIVES: tuple[tuple[str, ...], ...] = (
    ("camera.views_per_step=1",),
    ("distill.target_space=image",),
    ("prior.vae_slicing=true",),
    ("prior.text_encoder_on_cpu=true",),
    ("prior.dtype=bfloat16",),
    ("prior.resolution=256",),
    ("camera.views_per_step=1", "distill.target_space=image"),
)


def with_overrides(config: GenerateConfig, overrides: tuple[str, ...]) -> GenerateConfig:
    return from_dict(GenerateConfig, merge_overrides(to_dict(config), list(overrides)))


def alternatives(config: GenerateConfig, shapes: ModelShapes, cuda: bool = True, gsplat: bool = False
                 ) -> list[tuple[tuple[str, ...], MemoryEstimate]]:
    """Settings that change the estimate of `config`, each with its estimate, smallest first."""
    base = estimate_memory(config, shapes, cuda, gsplat).total
    found = []
    for overrides in ALTERNATIVES:
        estimate = estimate_memory(with_overrides(config, overrides), shapes, cuda, gsplat)
        if estimate.total < base:
            found.append((overrides, estimate))
    return sorted(found, key=lambda item: item[1].total)


TABLE_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("`sd15` (512 px, 4 views, latent target)", ()),
    ("`camera.views_per_step=1`", ("camera.views_per_step=1",)),
    ("`distill.target_space=image`", ("distill.target_space=image",)),
    ("both", ("camera.views_per_step=1", "distill.target_space=image")),
)


def markdown_table(shapes: ModelShapes | None = None) -> str:
    """The docs' GPU memory table: the sd15 preset and its lighter variants, torch rasterizer, float16 on CUDA."""
    from tv3dg.pipeline.config import build_config

    shapes = shapes or sd15_shapes()
    preset = build_config("sd15", {"prompt": "a corgi"}, [])
    estimates = [estimate_memory(with_overrides(preset, overrides), shapes) for _, overrides in TABLE_COLUMNS]
    lines = ["| part | " + " | ".join(title for title, _ in TABLE_COLUMNS) + " |",
             "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for name in estimates[0].parts:
        lines.append(f"| {name} | " + " | ".join(f"{e.gib(name):.2f} GiB" for e in estimates) + " |")
    lines.append("| **total** | " + " | ".join(f"**{e.gib():.1f} GiB**" for e in estimates) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
