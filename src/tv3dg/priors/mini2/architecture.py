"""World 2's mini prior: SD-1.5's classes and proportions, tiny, and told no camera.

64 px images and a VAE with factor 4 give 16x16x4 latents (SD-1.5: factor 8, 64x64x4 at 512 px).
Factor 8 (8x8x8 latents) was tried first and kept too little of world 2's fine patterns and eyes
for the measuring classifier to read the reconstructions as the renders (model card, "What was
tried on the VAE"). The UNet sees 16x16 latents through a plain conv level, then attends to text
and IP-Adapter image tokens at 8x8 and 4x4: about the cost of the 8x8 design it replaced. It has
no class embedding: like SD-1.5 it sees only text and image tokens, so the side it draws must
come from the picture it denoises or from view words.
"""

from __future__ import annotations

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from tv3dg.priors.mini.architecture import TEXT_DIM

IMAGE_SIZE = 64
VAE_FACTOR = 4
LATENT_SIZE = IMAGE_SIZE // VAE_FACTOR
LATENT_CHANNELS = 4
IMAGE_EMBED_DIM = 64
MAX_LENGTH = 24  # tokens: the longest captions have 22 (with the start and end tokens)


def build_vae() -> AutoencoderKL:
    """Three levels (64 -> 16 px): the wide level at low resolution, where convolutions are cheap."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS, sample_size=IMAGE_SIZE,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8,
    )


def build_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 128), layers_per_block=1, norm_num_groups=16,
        cross_attention_dim=TEXT_DIM, attention_head_dim=8,
    )


def build_image_encoder() -> CLIPVisionModelWithProjection:
    config = CLIPVisionConfig(
        image_size=IMAGE_SIZE, patch_size=8, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, projection_dim=IMAGE_EMBED_DIM,
    )
    return CLIPVisionModelWithProjection(config)
