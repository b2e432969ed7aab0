"""The mini prior's architecture: the same diffusers/transformers classes as SD-1.5, tiny.

Sizes were chosen by measuring step time on a 2-core CPU: 32^2 images, a 4x-downsampling VAE
(8x8x4 latents, where UNet attention is cheap), a ~6M-parameter camera-conditioned UNet (UNet and VAE ship in
float16 to stay inside the 20 MB package budget; diffusers loads them as float32).
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from diffusers.models.embeddings import ImageProjection
from transformers import CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

from torch import Tensor

from tv3dg.priors.camera_conditioning import CAMERA_FEATURE_DIM

IMAGE_SIZE = 32
LATENT_CHANNELS = 4
TEXT_DIM = 64  # text hidden size = UNet cross-attention dim
IMAGE_EMBED_DIM = 64  # CLIP image embedding (projection) size fed to the IP-Adapter
NUM_IMAGE_TOKENS = 4  # as in the SD-1.5 base IP-Adapter
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def build_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS, sample_size=IMAGE_SIZE,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64), layers_per_block=1, norm_num_groups=16,
    )


def build_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 4, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(64, 128, 128), layers_per_block=1, norm_num_groups=16,
        cross_attention_dim=TEXT_DIM, attention_head_dim=8,
        class_embed_type="projection", projection_class_embeddings_input_dim=CAMERA_FEATURE_DIM,
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
        image_size=IMAGE_SIZE, patch_size=4, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
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
