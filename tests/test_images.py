"""The one image reader of every entry point and its policy (see `tv3dg.priors.images.read_image`)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tv3dg.errors import UserError
from tv3dg.pipeline.config import build_config
from tv3dg.pipeline.run import image_background
from tv3dg.priors.images import read_image


def saved(tmp_path, image: Image.Image, name: str = "image.png", **kwargs) -> str:
    path = tmp_path / name
    image.save(path, **kwargs)
    return str(path)


def written(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image)


def half_transparent_red() -> Image.Image:
    image = Image.new("RGBA", (32, 32), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 16, 32))  # left half fully transparent
    return image


def test_transparency_becomes_the_background_white_by_default(tmp_path):
    path = saved(tmp_path, half_transparent_red())
    assert pixels(read_image(path))[0, 0].tolist() == [255, 255, 255]
    assert pixels(read_image(path))[0, 31].tolist() == [255, 0, 0]
    assert pixels(read_image(path, background=(0.0, 0.0, 0.0)))[0, 0].tolist() == [0, 0, 0]


def test_half_alpha_blends_and_other_transparent_modes_composite_too(tmp_path):
    blend = pixels(read_image(saved(tmp_path, Image.new("RGBA", (16, 16), (0, 0, 255, 128)))))[0, 0]
    assert blend.tolist() == [127, 127, 255]
    grey_alpha = pixels(read_image(saved(tmp_path, Image.new("LA", (16, 16), (0, 0)), "la.png")))[0, 0]
    assert grey_alpha.tolist() == [255, 255, 255]
    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    keyed = pixels(read_image(saved(tmp_path, palette, "p.png", transparency=1)))[0, 0]
    assert keyed.tolist() == [255, 255, 255]


def test_grayscale_is_expanded_to_rgb(tmp_path):
    assert pixels(read_image(saved(tmp_path, Image.new("L", (16, 16), 90))))[3, 3].tolist() == [90, 90, 90]


def test_jpeg_and_cmyk_are_read_as_rgb(tmp_path):
    assert read_image(saved(tmp_path, Image.new("RGB", (20, 16), (10, 200, 30)), "x.jpg")).size == (20, 16)
    assert read_image(saved(tmp_path, Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "c.jpg")).mode == "RGB"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: str(d / "absent.png"), "does not exist"),
        (lambda d: saved(d, Image.fromarray(np.zeros((32, 32), np.uint16))), "more than 8 bits per channel"),
        (lambda d: saved(d, Image.new("RGB", (4097, 16))), "at most 4096 px per side"),
        (lambda d: saved(d, Image.new("RGB", (15, 64))), "at least 16 px per side"),
        (lambda d: written(d / "bad.png", b"\x89PNG\r\n\x1a\n garbage"), "could not be read as an image"),
    ],
)
def test_refusals_are_one_line(tmp_path, make, message):
    with pytest.raises(UserError, match=message) as error:
        read_image(make(tmp_path))
    assert "\n" not in str(error.value)


def test_sixteen_bit_rgb_png_is_refused_although_pillow_narrows_it(tmp_path):
    """Pillow opens a 16-bit RGB PNG as 8-bit RGB; the header says what the file holds."""
    import struct
    import zlib

    width = height = 16
    raw = b"".join(b"\x00" + b"\x12\x34" * 3 * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # bit depth 16, colour type RGB
    path = tmp_path / "deep_rgb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with pytest.raises(UserError, match="more than 8 bits per channel"):
        read_image(path)


@pytest.mark.parametrize("background, expected", [("white", (1.0, 1.0, 1.0)), ("random", (1.0, 1.0, 1.0)),
                                                  ("black", (0.0, 0.0, 0.0))])
def test_generate_composites_onto_the_render_background(background, expected):
    config = build_config("mini", {"prompt": "a cube"}, [f"camera.background={background}"])
    assert image_background(config) == expected
