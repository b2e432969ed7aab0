"""Attribute classifier for world renders: measurement only, never used by prior or generator.

`classify(images)` names the shape, colour and pattern of [B, 3, H, W] images in [0, 1]
(white background, the object roughly centred, as world renders and mini-prior samples are).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tv3dg.priors.mini.architecture import IMAGE_SIZE
from tv3dg.priors.mini.module_io import load_module, save_module
from tv3dg.priors.mini.paths import MINI_CLASSIFIER
from tv3dg.priors.mini.world import COLOUR_NAMES, PATTERNS, SHAPES

ATTRIBUTE_NAMES = {"shape": SHAPES, "colour": COLOUR_NAMES, "pattern": PATTERNS}


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class AttributeClassifier(nn.Module):
    """A small CNN with one head per attribute."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            _block(3, width), nn.MaxPool2d(2), _block(width, 2 * width), nn.MaxPool2d(2), _block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.heads = nn.ModuleDict({name: nn.Linear(4 * width, len(names)) for name, names in ATTRIBUTE_NAMES.items()})

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Logits per attribute for images [B, 3, H, W] in [0, 1] (resized to the world size)."""
        if images.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
            images = F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False)
        features = self.features(images * 2 - 1)
        return {name: head(features) for name, head in self.heads.items()}

    @torch.no_grad()
    def classify(self, images: Tensor) -> dict[str, Tensor]:
        """Predicted indices per attribute ([B] long tensors); names via ATTRIBUTE_NAMES."""
        self.eval()
        return {name: logits.argmax(-1) for name, logits in self(images.float().clamp(0, 1)).items()}


def save_classifier(model: AttributeClassifier, path: Path) -> None:
    save_module(model, path)


def load_classifier(path: Path | str = MINI_CLASSIFIER) -> AttributeClassifier:
    return load_module(AttributeClassifier(), path, "attribute classifier")


def classify(images: Tensor, model: AttributeClassifier | None = None) -> dict[str, list[str]]:
    """Attribute names per image, e.g. {'shape': ['cube', ...], 'colour': [...], 'pattern': [...]}."""
    model = model or load_classifier()
    indices = model.classify(images)
    return {name: [ATTRIBUTE_NAMES[name][i] for i in idx.tolist()] for name, idx in indices.items()}


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Small shifts and noise so the classifier also reads imperfect prior samples."""
    b = images.shape[0]
    shift = torch.randint(-2, 3, (2,), generator=generator).tolist()
    images = torch.roll(images, shifts=shift, dims=(2, 3))
    sigma = 0.04 * torch.rand(b, 1, 1, 1, generator=generator)
    return (images + sigma * torch.randn(images.shape, generator=generator)).clamp(0, 1)
