"""What a viewer's canvas shows, measured from a screenshot: the background colour and the
object's bounding box and centre as fractions of the canvas (shared by the browser tests)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OBJECT_DIFFERENCE = 40  # a pixel is the object's when a channel differs this much from the background


@dataclass(frozen=True)
class Framing:
    background: tuple[int, int, int]
    width_fraction: float  # object's bounding-box width / canvas width
    centre_offset: tuple[float, float]  # (x, y) offset of the box centre from the canvas centre, in canvas widths/heights
    object_pixels: int

    def check(self) -> None:
        """The framing the app promises: object 25-85% of the width, centred within 10%, background not black."""
        assert min(self.background) > 128, f"background {self.background} is not light"
        assert 0.25 <= self.width_fraction <= 0.85, f"object is {self.width_fraction:.0%} of the canvas width"
        assert max(abs(v) for v in self.centre_offset) <= 0.10, f"object centre is off by {self.centre_offset}"


def framing(png: bytes) -> Framing:
    """Background: the median of the border pixels. Box: the 1st to 99th percentile of the object
    pixels' coordinates, so that a few stray splats do not stretch it."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
    h, w, _ = rgb.shape
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    background = np.median(border, axis=0)
    ys, xs = np.nonzero(np.abs(rgb - background).max(axis=2) > OBJECT_DIFFERENCE)
    if len(xs) == 0:
        return Framing(tuple(int(c) for c in background), 0.0, (1.0, 1.0), 0)
    x0, x1 = np.percentile(xs, [1, 99])
    y0, y1 = np.percentile(ys, [1, 99])
    return Framing(
        background=tuple(int(c) for c in background),
        width_fraction=float((x1 - x0 + 1) / w),
        centre_offset=(float(((x0 + x1) / 2 + 0.5) / w - 0.5), float(((y0 + y1) / 2 + 0.5) / h - 0.5)),
        object_pixels=len(xs),
    )


def canvas_png(page, canvas) -> bytes:
    """`canvas` (a locator, possibly inside an iframe) cut out of a screenshot of the viewport: a
    locator's own screenshot waits for the element to be "stable" over animation frames, which a
    software-GL renderer on a busy machine may not deliver in time."""
    canvas.scroll_into_view_if_needed(timeout=60_000)
    box = canvas.bounding_box(timeout=60_000)  # relative to the viewport
    shot = Image.open(io.BytesIO(page.screenshot(timeout=60_000)))
    scale = shot.width / page.viewport_size["width"]
    crop = shot.crop(tuple(round(v * scale) for v in (box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"])))
    out = io.BytesIO()
    crop.save(out, format="PNG")
    return out.getvalue()
