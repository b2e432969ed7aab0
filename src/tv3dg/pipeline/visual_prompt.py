"""Reading the visual prompt strictly: the method expects one 8-bit RGB picture of sane size."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from tv3dg.errors import UserError

MAX_SIDE = 4096
MIN_SIDE = 16


def read_visual_prompt(path: str | Path) -> Image.Image:
    """Open `path` as an 8-bit RGB image, or raise `UserError` naming what is wrong and the fix."""
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
            if mode in ("L", "LA", "1", "P") and _is_grayscale(image):
                raise UserError(f"image '{path}' is grayscale; the visual prompt carries colour, give an RGB image")
            if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                raise UserError(
                    f"image '{path}' has an alpha channel; flatten it onto a background (e.g. white) and save as RGB"
                )
            if mode.startswith("I") or mode == "F" or _png_bit_depth(path) > 8:
                raise UserError(f"image '{path}' has more than 8 bits per channel; save it as 8-bit RGB")
            image.load()
            return image.convert("RGB")
    except Image.DecompressionBombError:
        raise UserError(f"image '{path}' is too large to open safely; resize it to at most {MAX_SIDE} px per side") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise UserError(f"image '{path}' could not be read ({type(err).__name__}); pass an intact PNG or JPEG file") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


def _is_grayscale(image: Image.Image) -> bool:
    if image.mode != "P":
        return True
    palette = image.convert("RGB").getcolors(maxcolors=1 << 16)
    return palette is not None and all(r == g == b for _, (r, g, b) in palette)


def _png_bit_depth(path: Path) -> int:
    """Bits per channel from a PNG header (Pillow silently narrows 16-bit RGB PNGs to 8 bits)."""
    with open(path, "rb") as handle:
        header = handle.read(25)
    if header[:8] != b"\x89PNG\r\n\x1a\n" or len(header) < 25:
        return 8
    return header[24]
