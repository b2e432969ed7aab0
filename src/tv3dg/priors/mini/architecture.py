"""The mini prior's architecture: SD-1.5's diffusers/transformers classes and proportions, tiny,
and told no camera.

64 px images and a VAE with factor 4 give 16x16x4 latents (SD-1.5: factor 8, 64x64x4 at 512 px).
Factor 8 (8x8x8 latents) was tried first and kept too little of the world's fine patterns and eyes
for the measuring classifier to read the reconstructions as the renders (model card, "What was
tried on the VAE"). The UNet sees 16x16 latents through a plain conv level, then attends to text
and IP-Adapter image tokens at 8x8 and 4x4. It has no class embedding: like SD-1.5 it sees only
text and image tokens, so the side it draws must come from the picture it denoises or from view
words. UNet and VAE ship in float16 to keep the package small; diffusers loads them as float32.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from diffusers.models.embeddings import ImageProjection
from torch import Tensor
from transformers import CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

IMAGE_SIZE = 64
VAE_FACTOR = 4
LATENT_SIZE = IMAGE_SIZE // VAE_FACTOR
LATENT_CHANNELS = 4
TEXT_DIM = 64  # text hidden size = UNet cross-attention dim
IMAGE_EMBED_DIM = 64  # CLIP image embedding (projection) size fed to the IP-Adapter
NUM_IMAGE_TOKENS = 4  # as in the SD-1.5 base IP-Adapter
MAX_LENGTH = 24  # tokens: the longest captions have 22 (with the start and end tokens)
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


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


def build_text_encoder(vocab_size: int, bos_token_id: int, eos_token_id: int, max_length: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=TEXT_DIM, intermediate_size=4 * TEXT_DIM, num_hidden_layers=3,
        num_attention_heads=4, max_position_embeddings=max_length, projection_dim=TEXT_DIM,
        bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=eos_token_id,
    )
    return CLIPTextModel(config)


def build_image_encoder() -> CLIPVisionModelWithProjection:
    config = CLIPVisionConfig(
        image_size=IMAGE_SIZE, patch_size=8, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, projection_dim=IMAGE_EMBED_DIM,
    )
    return CLIPVisionModelWithProjection(config)


def build_image_processor(size: int = IMAGE_SIZE) -> CLIPImageProcessor:
    return CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": size}, do_center_crop=True,
        crop_size={"height": size, "width": size}, do_rescale=True, rescale_factor=1 / 255,
        do_normalize=True, image_mean=list(IMAGE_MEAN), image_std=list(IMAGE_STD), do_convert_rgb=True,
    )


def image_encoder_input(images: Tensor) -> Tensor:
    """[0, 1] images at IMAGE_SIZE -> the image encoder's input (what CLIPImageProcessor makes)."""
    mean = torch.tensor(IMAGE_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def build_image_projection() -> ImageProjection:
    return ImageProjection(image_embed_dim=IMAGE_EMBED_DIM, cross_attention_dim=TEXT_DIM, num_image_text_embeds=NUM_IMAGE_TOKENS)


def build_train_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**SCHEDULE, prediction_type="epsilon", clip_sample=False)


def build_sample_scheduler() -> DDIMScheduler:
    return DDIMScheduler(**SCHEDULE, prediction_type="epsilon", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
