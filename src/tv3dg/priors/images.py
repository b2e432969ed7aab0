"""Image inputs of the prior: reading a visual prompt, resizing renders, CLIP preprocessing on tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from tv3dg.errors import UserError
from tv3dg.priors.ip_adapter import ClipPreprocess


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB, with a one-line error when it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(background, rgba).convert("RGB")
            return image.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"image '{path}' does not exist; pass an existing PNG or JPEG file") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"image '{path}' could not be read as an image ({type(err).__name__}); pass a PNG or JPEG file") from None


def to_image_batch(image: Image.Image | Tensor) -> Tensor:
    """A PIL image or a [3,H,W] / [B,3,H,W] tensor in [0,1] -> float tensor [B,3,H,W]."""
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[1] != 3:
        raise UserError(f"an image tensor must be [3,H,W] or [B,3,H,W] with values in [0,1], got shape {tuple(image.shape)}")
    return image.float()


def resize(images: Tensor, height: int, width: int, mode: str = "bilinear") -> Tensor:
    """Differentiable resize, antialiased when shrinking; a no-op at the target size."""
    if images.shape[-2:] == (height, width):
        return images
    shrinking = images.shape[-2] > height or images.shape[-1] > width
    return F.interpolate(images, size=(height, width), mode=mode, align_corners=False, antialias=shrinking)


def clip_preprocess(images: Tensor, preprocess: ClipPreprocess) -> Tensor:
    """Resize the shortest edge, centre-crop and normalise, as CLIPImageProcessor does, on tensors."""
    height, width = images.shape[-2:]
    short, long = sorted((height, width))
    new_short, new_long = preprocess.size, int(preprocess.size * long / short)  # truncated, as transformers does
    new_h, new_w = (new_short, new_long) if height <= width else (new_long, new_short)
    new_h, new_w = max(new_h, preprocess.crop), max(new_w, preprocess.crop)
    images = resize(images, new_h, new_w, mode="bicubic")
    top, left = (new_h - preprocess.crop) // 2, (new_w - preprocess.crop) // 2
    images = images[..., top : top + preprocess.crop, left : left + preprocess.crop]
    mean = torch.tensor(preprocess.mean, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(preprocess.std, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std
