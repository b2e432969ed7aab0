"""The diffusion-prior interface that the losses, SGC and the pipeline are written against.

A prior predicts noise for a batch of latents under named condition *branches*, all evaluated in
one batched UNet call:

- "negative": negative prompt + unconditional (zero) image tokens      c-
- "positive": prompt + image tokens of the visual prompt               c+
- "text": prompt + unconditional image tokens (text-only positive)
- "empty": empty prompt + unconditional image tokens (DDIM inversion)  c0
- "positive_perturbed": c+ with perturbed self-attention (PAG)

Without a visual prompt there are no image tokens and "text" equals "positive".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import torch
from PIL import Image
from torch import Tensor

from tv3dg.render.cameras import Cameras

BRANCHES = ("negative", "positive", "text", "empty", "positive_perturbed")
VisualPrompt = Image.Image | Tensor


@dataclass
class Conditions:
    """Per-row conditioning of a batch of B latents (text rows follow the cameras' views)."""

    positive: Tensor  # [B, L, D] prompt embeddings (view-dependent when enabled)
    negative: Tensor  # [B, L, D] negative-prompt embeddings
    empty: Tensor  # [B, L, D] empty-prompt embeddings
    image_embeds: Tensor | None  # [B, 1, E] image-encoder embeddings of the visual prompt
    class_labels: Tensor | None  # [B, F] camera features for camera-conditioned UNets
    prompts: list[str]  # the positive prompt of each row

    def __len__(self) -> int:
        return self.positive.shape[0]


@dataclass
class UNetCounter:
    """UNet cost so far: `calls` forward passes over `rows` latents in total."""

    calls: int = 0
    rows: int = 0


class DiffusionPrior(ABC):
    """A frozen latent diffusion model used as a score function (epsilon prediction)."""

    alphas_cumprod: Tensor  # [num_train_timesteps] float32, on the prior's device
    num_train_timesteps: int
    resolution: int  # image size the VAE is fed (renders are resized to it)
    counter: UNetCounter

    @property
    def unet_evaluations(self) -> int:
        """UNet forward calls so far (`counter.rows` has the batch rows they covered)."""
        return self.counter.calls

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @property
    @abstractmethod
    def has_image_prompt(self) -> bool:
        """Whether an IP-Adapter is loaded, so a visual prompt can condition the UNet."""

    @abstractmethod
    def encode_images(self, images: Tensor) -> Tensor:
        """Images [B,3,H,W] in [0,1] -> latents z0, differentiable through the VAE encoder."""

    @abstractmethod
    def decode_latents(self, latents: Tensor) -> Tensor:
        """Latents -> images [B,3,R,R] in [0,1]."""

    @abstractmethod
    def prepare_conditions(
        self, prompt: str, visual_prompt: VisualPrompt | None = None, cameras: Cameras | None = None
    ) -> Conditions:
        """Embed the prompts (one row per camera, or one row without cameras) and the visual prompt."""

    @abstractmethod
    def predict_noise(
        self, latents: Tensor, timestep: int | Tensor, conditions: Conditions, branches: Sequence[str]
    ) -> dict[str, Tensor]:
        """Noise predictions per branch, from ONE UNet call over len(branches) * B rows; no gradient."""

    @abstractmethod
    def image_features(self, images: Tensor) -> Tensor:
        """Global image-encoder embeddings [B, E] of images in [0,1]; differentiable."""

    @abstractmethod
    def image_patch_features(self, images: Tensor) -> Tensor:
        """Image-encoder patch tokens [B, N, D] (class token dropped) of images in [0,1]; differentiable."""

    @abstractmethod
    def sample(
        self,
        prompt: str,
        visual_prompt: VisualPrompt | None = None,
        cameras: Cameras | None = None,
        steps: int = 30,
        guidance: float = 7.5,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Plain DDIM sampling with classifier-free guidance -> images [B,3,R,R] in [0,1]."""
