"""Checks of world 2's finished stages, for its model card (`tv3dg mini eval --world 2`).

- The classifier on fresh renders (a seed never used in training) from every side of the orbit:
  accuracy per attribute, the eyes counted only on views that are clearly seen or hidden.
- The VAE through the classifier: the share of renders whose reconstruction is read exactly as
  the render itself, attribute by attribute (the issue's bar is 98%), the eyes again only where
  they clearly show or clearly do not.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL

from tv3dg.priors.mini2.classifier import AttributeClassifier, emblem_labels
from tv3dg.priors.mini2.world import any_cameras, random_objects, render_objects

EVAL_SEED = 20261207


def fresh_views(count: int, size: int = 64, seed: int = EVAL_SEED, chunk: int = 256):
    """(images [N,3,H,W], attributes [N,5], eyes' pixels [N]) of random objects from anywhere on the orbit."""
    generator = torch.Generator().manual_seed(seed)
    images, attributes, eyes = [], [], []
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        objects = random_objects(n, generator)
        render = render_objects(objects, any_cameras(n, size, generator))
        images.append(render.rgb)
        attributes.append(torch.tensor([o.as_row() for o in objects]))
        eyes.append(render.emblem_pixels())
    return torch.cat(images), torch.cat(attributes), torch.cat(eyes)


def _readings(model: AttributeClassifier, images: torch.Tensor, chunk: int = 512) -> dict[str, torch.Tensor]:
    parts = [model.classify(images[i : i + chunk]) for i in range(0, len(images), chunk)]
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


def classifier_accuracy(model: AttributeClassifier, count: int = 2000) -> dict[str, float]:
    images, attributes, eyes = fresh_views(count)
    read = _readings(model, images)
    accuracy = {name: float((read[name] == attributes[:, i]).float().mean()) for i, name in enumerate(("shape", "colour", "pattern"))}
    label, known = emblem_labels(eyes)
    accuracy["emblem"] = float((read["emblem"][known] == label[known]).float().mean())
    accuracy["emblem_views_scored"] = float(known.float().mean())
    return accuracy


@torch.no_grad()
def reconstruction_agreement(vae: AutoencoderKL, model: AttributeClassifier, count: int = 1000) -> dict[str, float]:
    """Share of renders whose VAE reconstruction the classifier reads as it reads the render."""
    images, _, eyes = fresh_views(count, seed=EVAL_SEED + 1)
    recon = torch.cat([((vae.decode(vae.encode(images[i : i + 256] * 2 - 1).latent_dist.mean).sample + 1) / 2).clamp(0, 1)
                       for i in range(0, len(images), 256)])
    direct, through = _readings(model, images), _readings(model, recon)
    same = {name: direct[name] == through[name] for name in direct}
    _, clear = emblem_labels(eyes)  # as in classifier_accuracy: grazing eyes are neither seen nor hidden
    same["emblem"] = same["emblem"] | ~clear
    agreement = {name: float(same[name].float().mean()) for name in ("shape", "colour", "pattern")}
    agreement["emblem"] = float(same["emblem"][clear].float().mean())
    agreement["all"] = float(torch.stack(list(same.values())).all(dim=0).float().mean())
    agreement["pixel_mse"] = float(((recon - images) ** 2).mean())
    return agreement
