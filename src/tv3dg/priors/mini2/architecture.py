"""World 2's mini prior: SD-1.5's classes and proportions, tiny, and told no camera.

64 px images and a VAE with SD-1.5's factor 8 give 8x8 latents, where UNet attention is cheap
on a CPU. The latents have 8 channels, not SD-1.5's 4: a 64 px image has thin stripes 1.5 px
wide, finer than any texture SD-1.5's VAE must keep relative to its 8 px latent cells, and the
measuring classifier must read the VAE's reconstructions as it reads the renders. The UNet has no class embedding: like SD-1.5 it sees only text and IP-Adapter image
tokens, so the side it draws must come from the picture it denoises or from view words.
"""

from __future__ import annotations

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from tv3dg.priors.mini.architecture import TEXT_DIM

IMAGE_SIZE = 64
VAE_FACTOR = 8
LATENT_SIZE = IMAGE_SIZE // VAE_FACTOR
LATENT_CHANNELS = 8
IMAGE_EMBED_DIM = 64
MAX_LENGTH = 24  # tokens: the longest captions have 22 (with the start and end tokens)


def build_vae() -> AutoencoderKL:
    """Four levels (64 -> 8 px): the wide levels at low resolution, where convolutions are cheap."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS, sample_size=IMAGE_SIZE,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 64, 64), layers_per_block=1, norm_num_groups=8,
    )


def build_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(64, 128, 128), layers_per_block=1, norm_num_groups=16,
        cross_attention_dim=TEXT_DIM, attention_head_dim=8,
    )


def build_image_encoder() -> CLIPVisionModelWithProjection:
    config = CLIPVisionConfig(
        image_size=IMAGE_SIZE, patch_size=8, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, projection_dim=IMAGE_EMBED_DIM,
    )
    return CLIPVisionModelWithProjection(config)
