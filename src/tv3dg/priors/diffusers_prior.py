"""`DiffusersPrior`: SD-1.5-architecture weights (real or the bundled mini prior) as a score function.

One class for both kinds of weights: a UNet2DConditionModel + AutoencoderKL + CLIP text encoder,
optionally an IP-Adapter with its CLIP image encoder, PAG on chosen self-attention layers, and
camera conditioning when the UNet has a projection class embedding (the mini prior).
"""

from __future__ import annotations

import re
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import Tensor

from tv3dg.diffusion.ddim import ddim_walk, sampling_path
from tv3dg.diffusion.guidance import check_scale
from tv3dg.errors import UserError, warn
from tv3dg.priors.base import BRANCHES, Conditions, DiffusionPrior, UNetCounter, VisualPrompt
from tv3dg.priors.camera_conditioning import camera_features
from tv3dg.priors.config import PriorConfig
from tv3dg.priors.images import clip_preprocess, resize, to_image_batch
from tv3dg.priors.ip_adapter import (
    ip_layer_scales,
    load_image_encoder,
    load_ip_adapter,
    resolve_image_encoder,
    resolve_ip_adapter,
    set_ip_layer_scales,
)
from tv3dg.priors.loading import load_sd15_components, resolve_model_dir
from tv3dg.priors.pag import pag_modules, perturbed_self_attention
from tv3dg.priors.prompts import view_dependent_prompts
from tv3dg.priors.registry import named_model
from tv3dg.render.cameras import Cameras

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device '{name}' is not a torch device; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for, but no CUDA GPU is available; use device=cpu")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "float16" and device.type == "cpu":
        raise UserError("dtype float16 needs a CUDA device; use float32 (or bfloat16) on the CPU")
    return DTYPES[name]


class DiffusersPrior(DiffusionPrior):
    """Loads the weights named by `PriorConfig` and evaluates them in batched, counted UNet calls.

    `encode_images` uses the mean of the VAE posterior (deterministic, so the same render always
    gives the same z0). `counter.calls` counts UNet forward calls, `counter.rows` their rows.
    """

    def __init__(self, config: PriorConfig):
        self.config = config
        self._device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self._device)
        parts = load_sd15_components(resolve_model_dir(config.model))
        self.unet, self.vae, self.text_encoder, self.tokenizer = parts.unet, parts.vae, parts.text_encoder, parts.tokenizer
        self.ip_scales: dict[str, float] = {}
        encoder_dir, embed_dim = None, None
        if config.ip_adapter is not None:
            ip_path = resolve_ip_adapter(config.ip_adapter)
            encoder_dir = resolve_image_encoder(ip_path, config.image_encoder)
            embed_dim = load_ip_adapter(self.unet, ip_path)
            self.ip_scales = ip_layer_scales(self.unet, config.ip_mode, config.ip_scale, config.style_blocks)
            set_ip_layer_scales(self.unet, self.ip_scales)
        elif config.image_encoder is not None:
            encoder_dir = Path(config.image_encoder).expanduser()
        self.image_encoder, self.clip_preprocess = (None, None)
        if encoder_dir is not None:
            self.image_encoder, self.clip_preprocess = load_image_encoder(encoder_dir, embed_dim)
        self.pag_modules = pag_modules(self.unet, list(config.pag_layers))

        self.alphas_cumprod = parts.scheduler.alphas_cumprod.float().to(self._device)
        self.num_train_timesteps = int(parts.scheduler.config.num_train_timesteps)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.resolution = int(config.resolution or self.vae.config.sample_size)
        if self.resolution % self.vae_scale_factor:
            raise UserError(f"resolution {self.resolution} must be a multiple of the VAE factor {self.vae_scale_factor}")
        self.latent_size = self.resolution // self.vae_scale_factor
        self.latent_channels = int(self.unet.config.in_channels)
        self.camera_conditioned = self.unet.config.class_embed_type == "projection"
        self.view_prompts = (
            not self.camera_conditioned if config.view_dependent_prompts is None else config.view_dependent_prompts
        )
        named = named_model(config.model)
        self.vocabulary = named.vocabulary() if named is not None and named.vocabulary is not None else None
        self.counter = UNetCounter()
        self._text_cache: dict[str, Tensor] = {}
        self._image_cache: tuple[object, int, Tensor] | None = None  # (visual prompt, its version, embeds)
        self._place_modules()

    def _place_modules(self) -> None:
        # Off the GPU the text encoder runs in float32 (half precision is slow or missing on CPUs);
        # its cached embeddings are cast to the run's dtype.
        text_on_cpu = self.config.text_encoder_on_cpu
        text_device, text_dtype = (torch.device("cpu"), torch.float32) if text_on_cpu else (self._device, self.dtype)
        for module, device, dtype in (
            (self.unet, self._device, self.dtype), (self.vae, self._device, self.dtype),
            (self.text_encoder, text_device, text_dtype), (self.image_encoder, self._device, self.dtype),
        ):
            if module is not None:  # in the run's dtype, whatever dtype the files hold
                module.requires_grad_(False).eval().to(device)
                if any(p.dtype != dtype for p in module.parameters()):
                    module.to(dtype)
        if self.config.channels_last:
            self.unet.to(memory_format=torch.channels_last)
        if self.config.vae_slicing:
            self.vae.enable_slicing()
        if self.config.vae_tiling:
            self.vae.enable_tiling()

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def has_image_prompt(self) -> bool:
        return bool(self.ip_scales)

    # ----- images <-> latents -------------------------------------------------------------
    def encode_images(self, images: Tensor) -> Tensor:
        images = resize(images.to(self._device), self.resolution, self.resolution)
        posterior = self.vae.encode((images * 2 - 1).to(self.dtype)).latent_dist
        shift = self.vae.config.shift_factor or 0.0
        return ((posterior.mean - shift) * self.vae.config.scaling_factor).float()

    def decode_latents(self, latents: Tensor) -> Tensor:
        shift = self.vae.config.shift_factor or 0.0
        latents = latents.to(self._device, self.dtype) / self.vae.config.scaling_factor + shift
        return ((self.vae.decode(latents).sample.float() + 1) / 2).clamp(0, 1)

    # ----- conditions ---------------------------------------------------------------------
    def known_words(self, text: str) -> tuple[str, list[str]]:
        """`text` as the text encoder will read it, and the words dropped from it.

        A prior with a closed vocabulary (the mini prior) never saw other words; its tokenizer
        would turn them into byte pieces that push the model off its training distribution and
        silently change the result, so they are dropped. Other priors read the text unchanged.
        """
        if self.vocabulary is None:
            return text, []
        words = re.findall(r"[a-z0-9]+", text.lower())
        return " ".join(w for w in words if w in self.vocabulary), [w for w in words if w not in self.vocabulary]

    def report_dropped_words(self, prompt: str) -> list[str]:
        """The words of `prompt` this prior drops, said in one warning line when there are any."""
        kept, dropped = self.known_words(prompt)
        if dropped:
            words = ", ".join(f"'{w}'" for w in dict.fromkeys(dropped))
            warn(f"the prior '{self.config.model}' was never trained on {words}; they are dropped and the prompt "
                 f"is read as '{kept}'")
        return dropped

    def _embed_texts(self, texts: list[str]) -> Tensor:
        """[len(texts), L, D] prompt embeddings, each distinct prompt encoded once and cached."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            tokens = self.tokenizer(
                [self.known_words(t)[0] for t in missing], padding="max_length",
                max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt",
            )
            with torch.no_grad():
                hidden = self.text_encoder(tokens.input_ids.to(self.text_encoder.device))[0]
            for text, row in zip(missing, hidden):
                self._text_cache[text] = row.to(self._device, self.dtype)
        return torch.stack([self._text_cache[t] for t in texts])

    def prepare_conditions(
        self, prompt: str, visual_prompt: VisualPrompt | None = None, cameras: Cameras | None = None
    ) -> Conditions:
        """Rows follow `cameras` (one row, front view, without). A visual prompt of N images gives N x 4 tokens."""
        rows = len(cameras) if cameras is not None else 1
        prompts = view_dependent_prompts(prompt, cameras) if cameras is not None and self.view_prompts else [prompt] * rows
        image_embeds = None
        if visual_prompt is not None:
            if not self.has_image_prompt:
                raise UserError("a visual prompt needs an IP-Adapter; pass --ip-adapter PATH (e.g. ip-adapter_sd15.safetensors)")
            embeds = self._visual_prompt_embeds(visual_prompt)
            image_embeds = embeds.to(self.dtype).unsqueeze(0).expand(rows, -1, -1)
        class_labels = None
        if self.camera_conditioned:
            if cameras is None:
                elevation, azimuth = torch.zeros(1), torch.zeros(1)
            else:
                elevation, azimuth = cameras.elevation_deg, cameras.azimuth_deg
            class_labels = camera_features(elevation, azimuth).to(self._device, self.dtype)
        return Conditions(
            positive=self._embed_texts(prompts),
            negative=self._embed_texts([self.config.negative_prompt] * rows),
            empty=self._embed_texts([""] * rows),
            image_embeds=image_embeds,
            class_labels=class_labels,
            prompts=prompts,
        )

    def _visual_prompt_embeds(self, visual_prompt: VisualPrompt) -> Tensor:
        """Image-encoder embeddings of the visual prompt, computed once while the same object is passed
        again (the 3D loop conditions every step on one prompt); an in-place edit invalidates it."""
        version = visual_prompt._version if isinstance(visual_prompt, Tensor) else 0
        cached = self._image_cache
        if cached is not None and cached[0] is visual_prompt and cached[1] == version:
            return cached[2]
        with torch.no_grad():
            embeds = self.image_features(to_image_batch(visual_prompt))
        self._image_cache = (visual_prompt, version, embeds)
        return embeds

    # ----- the UNet -----------------------------------------------------------------------
    def _branch_inputs(self, conditions: Conditions, branch: str) -> tuple[Tensor, Tensor | None]:
        text = {"negative": conditions.negative, "empty": conditions.empty}.get(branch, conditions.positive)
        if not self.has_image_prompt:
            return text, None
        image = conditions.image_embeds
        if image is None:
            embed_dim = self.unet.encoder_hid_proj.image_projection_layers[0].image_embeds.in_features
            return text, torch.zeros(len(conditions), 1, embed_dim, device=self._device, dtype=self.dtype)
        if branch in ("positive", "positive_perturbed"):
            return text, image
        return text, torch.zeros_like(image)

    @contextmanager
    def _text_only(self) -> Iterator[None]:
        """IP scales at 0 while there is no visual prompt: the UNet then equals the text-only model."""
        set_ip_layer_scales(self.unet, {name: 0.0 for name in self.ip_scales})
        try:
            yield
        finally:
            set_ip_layer_scales(self.unet, self.ip_scales)

    def predict_noise(
        self, latents: Tensor, timestep: int | Tensor, conditions: Conditions, branches: Sequence[str]
    ) -> dict[str, Tensor]:
        unknown = [b for b in branches if b not in BRANCHES]
        if unknown or len(set(branches)) != len(branches):
            raise ValueError(f"branches must be distinct names from {BRANCHES}, got {list(branches)}")
        order = sorted(branches, key=lambda b: b == "positive_perturbed")  # perturbed rows go last
        rows = latents.shape[0]
        if rows != len(conditions):
            raise ValueError(f"{rows} latents but {len(conditions)} condition rows")
        inputs = [self._branch_inputs(conditions, b) for b in order]
        text = torch.cat([t for t, _ in inputs])
        timesteps = torch.as_tensor(timestep, device=self._device).expand(rows).repeat(len(order))
        kwargs: dict = {}
        if self.has_image_prompt:
            kwargs["added_cond_kwargs"] = {"image_embeds": [torch.cat([i for _, i in inputs])]}
        if conditions.class_labels is not None:
            kwargs["class_labels"] = conditions.class_labels.repeat(len(order), 1)
        num_perturbed = rows if "positive_perturbed" in order else 0
        with ExitStack() as stack, torch.no_grad():
            if num_perturbed:
                if not self.pag_modules:
                    raise UserError("PAG guidance needs PAG layers; set pag_layers (e.g. [mid]) or pag_scale 0")
                stack.enter_context(perturbed_self_attention(self.unet, self.pag_modules, num_perturbed))
            if self.has_image_prompt and conditions.image_embeds is None:
                stack.enter_context(self._text_only())
            sample = latents.to(self._device, self.dtype).repeat(len(order), 1, 1, 1)
            noise = self.unet(sample, timesteps, encoder_hidden_states=text, **kwargs).sample.float()
        self.counter.calls += 1
        self.counter.rows += rows * len(order)
        return dict(zip(order, noise.chunk(len(order))))

    # ----- image-encoder features ---------------------------------------------------------
    def _vision(self, images: Tensor):
        if self.image_encoder is None:
            raise UserError("image features need a CLIP image encoder; pass an IP-Adapter or image_encoder FOLDER")
        pixels = clip_preprocess(images.to(self._device).float(), self.clip_preprocess)
        return self.image_encoder(pixel_values=pixels.to(self.dtype))

    def image_features(self, images: Tensor) -> Tensor:
        return self._vision(images).image_embeds.float()

    def image_patch_features(self, images: Tensor) -> Tensor:
        return self._vision(images).last_hidden_state[:, 1:].float()

    # ----- sampling -----------------------------------------------------------------------
    def sample(
        self,
        prompt: str,
        visual_prompt: VisualPrompt | None = None,
        cameras: Cameras | None = None,
        steps: int = 30,
        guidance: float = 7.5,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        check_scale("guidance", guidance, low=1.0, allow_low=True)
        if not 1 <= steps <= self.num_train_timesteps:
            raise UserError(f"sampling steps must be between 1 and {self.num_train_timesteps}, got {steps}")
        conditions = self.prepare_conditions(prompt, visual_prompt, cameras)
        shape = (len(conditions), self.latent_channels, self.latent_size, self.latent_size)
        latents = torch.randn(shape, generator=generator).to(self._device)

        def guided(z: Tensor, t: int) -> Tensor:
            noise = self.predict_noise(z, t, conditions, ("negative", "positive"))
            return noise["negative"] + guidance * (noise["positive"] - noise["negative"])

        latents = ddim_walk(guided, latents, sampling_path(steps, self.num_train_timesteps), self.alphas_cumprod).latents
        with torch.no_grad():
            return self.decode_latents(latents)
