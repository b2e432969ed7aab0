"""Write each finished training stage of world 2 into the package, as soon as it finishes.

A stage's weights land in `weights/` (see `paths.py`) the moment the stage is done, so they can
be committed and the next stage can start in a later session from a fresh clone. The VAE is
stored in float16 (diffusers loads it as float32) to keep the package small.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from tv3dg.priors.mini.module_io import save_module
from tv3dg.priors.mini2.data import RenderPool
from tv3dg.priors.mini2.paths import WeightPaths
from torch import nn


@torch.no_grad()
def latent_scaling_factor(vae: AutoencoderKL, pool: RenderPool, chunk: int = 512) -> float:
    """1 / std of the pool's latent means: what SD-1.5's 0.18215 is for its own VAE."""
    latents = torch.cat([vae.encode(pool.float_images(torch.arange(i, min(i + chunk, len(pool)))) * 2 - 1).latent_dist.mean
                         for i in range(0, len(pool), chunk)])
    return 1.0 / float(latents.std())


def export_vae(vae: AutoencoderKL, pool: RenderPool, paths: WeightPaths) -> None:
    vae.register_to_config(scaling_factor=latent_scaling_factor(vae, pool))
    paths.vae.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.vae.parent) as tmp:
        vae.half().save_pretrained(tmp, safe_serialization=True)
        vae.float()
        if paths.vae.exists():
            shutil.rmtree(paths.vae)
        shutil.move(tmp, paths.vae)


def export_module(model: nn.Module, path: Path) -> None:
    """A small network's weights (classifier, shape prior), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_module(model, path)
