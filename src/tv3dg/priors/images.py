"""Image inputs of the prior: the one image reader, resizing renders, CLIP preprocessing on tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from tv3dg.errors import UserError
from tv3dg.priors.ip_adapter import ClipPreprocess


MAX_SIDE = 4096
MIN_SIDE = 16
WHITE = (1.0, 1.0, 1.0)


def read_image(path: str | Path, background: tuple[float, float, float] = WHITE) -> Image.Image:
    """Open an image file as 8-bit RGB under the one policy of every entry point (generate, 2d):

    - an alpha channel (RGBA, LA, palette transparency) is composited onto `background`, the
      colour the renders use (white unless `camera.background=black`), as image-to-3D tools do;
    - grayscale is expanded to RGB (grey in, grey out: the asset takes grey tones);
    - more than 8 bits per channel, a side over MAX_SIDE or under MIN_SIDE pixels is refused;
    - anything else Pillow reads (palette, CMYK, ...) is converted to RGB.
    Every refusal is a one-line `UserError` naming the problem and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image '{path}' does not exist; pass an existing PNG or JPEG file")
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE
    try:
        with Image.open(path) as image:
            mode, size = image.mode, image.size
            if max(size) > MAX_SIDE:
                raise UserError(f"image '{path}' is {size[0]}x{size[1]}; resize it to at most {MAX_SIDE} px per side")
            if min(size) < MIN_SIDE:
                raise UserError(f"image '{path}' is {size[0]}x{size[1]}; give at least {MIN_SIDE} px per side")
            if mode.startswith("I") or mode == "F" or _png_bit_depth(path) > 8:
                raise UserError(f"image '{path}' has more than 8 bits per channel; save it as 8-bit RGB(A)")
            image.load()
            if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                fill = tuple(round(255 * c) for c in background) + (255,)
                return Image.alpha_composite(Image.new("RGBA", size, fill), image.convert("RGBA")).convert("RGB")
            return image.convert("RGB")
    except Image.DecompressionBombError:
        raise UserError(f"image '{path}' is too large to open safely; resize it to at most {MAX_SIDE} px per side") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(
            f"image '{path}' could not be read as an image ({type(err).__name__}); pass an intact PNG or JPEG file"
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


def _png_bit_depth(path: Path) -> int:
    """Bits per channel from a PNG header (Pillow silently narrows 16-bit RGB PNGs to 8 bits)."""
    with open(path, "rb") as handle:
        header = handle.read(25)
    if header[:8] != b"\x89PNG\r\n\x1a\n" or len(header) < 25:
        return 8
    return header[24]


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
