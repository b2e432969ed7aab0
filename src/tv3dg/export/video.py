"""Turntable videos (.mp4 / .gif) and contact sheets of Gaussian renders."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from tv3dg.atomic import atomic_path
from tv3dg.errors import UserError
from tv3dg.gaussians.model import Gaussians
from tv3dg.render.cameras import turntable_cameras
from tv3dg.render.rasterizer import rasterize

VIDEO_SUFFIXES = (".mp4", ".gif")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[..., H, W, 3] floats in [0, 1] -> uint8 numpy."""
    return (images.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


@torch.no_grad()
def render_turntable(
    gaussians: Gaussians,
    n_frames: int,
    resolution: int,
    elevation: float,
    radius: float,
    fov: float,
    background: torch.Tensor,
    batch_size: int = 4,
    progress: bool = True,
    description: str = "rendering",
) -> Iterator[np.ndarray]:
    """Yield `n_frames` uint8 frames [R, R, 3] orbiting the origin from the front view, with a progress bar."""
    cameras = turntable_cameras(n_frames, elevation, radius, fov, resolution, device=gaussians.means.device)
    with tqdm(total=n_frames, desc=description, unit="frame", disable=not progress, leave=False) as bar:
        for start in range(0, n_frames, batch_size):
            out = rasterize(gaussians, cameras[start : start + batch_size], background)
            yield from to_uint8(out.rgb)
            bar.update(out.rgb.shape[0])


def write_turntable(path: str | Path, frames: Sequence[np.ndarray] | Iterator[np.ndarray], fps: int = 24) -> Path:
    """Write uint8 frames [H, W, 3] as .mp4 (H.264 via imageio-ffmpeg) or looping .gif, atomically."""
    import imageio.v2 as imageio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise UserError(f"cannot write a video to '{path}': use a .mp4 or .gif file name")
    frames = list(frames)
    if not frames:
        raise ValueError("write_turntable needs at least one frame")
    with atomic_path(path) as tmp:
        if suffix == ".mp4":
            # yuv420p (what every player decodes) needs even sizes; pad by edge replication.
            height, width = frames[0].shape[:2]
            pad = ((0, height % 2), (0, width % 2), (0, 0))
            with imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", quality=8,
                                    pixelformat="yuv420p", macro_block_size=1) as writer:
                for frame in frames:
                    writer.append_data(np.pad(frame, pad, mode="edge"))
        else:
            images = [Image.fromarray(frame) for frame in frames]
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=round(1000 / fps), loop=0, optimize=False)
    return path


def contact_sheet(images: Sequence[np.ndarray], columns: int, gap: int = 2, fill: int = 255) -> np.ndarray:
    """Tile uint8 images [H, W, 3] (all one size) into a grid with `columns` columns."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    height, width = images[0].shape[:2]
    sheet = np.full((rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), fill, dtype=np.uint8)
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        sheet[r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width] = image
    return sheet


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 image atomically (format from the suffix, e.g. .png)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp)
    return path


def save_contact_sheet(path: str | Path, images: Sequence[np.ndarray], columns: int = 4) -> Path:
    """`views.png`: the contact sheet of `images`."""
    return save_image(path, contact_sheet(images, columns))
