"""The attribute classifier of the mini world: measurement only, never seen by the prior or the generator.

It names shape, colour and pattern, and says whether the eyes (the emblem on every object's
front) are visible: that last reading, on views from behind, is what counts multi-faced
(Janus) assets. It is trained on renders from every side, so a back view is as familiar to it
as a front view. Eyes covering 3 or more pixels are "visible", under a quarter pixel "hidden";
grazing views in between are left out of its training and its accuracy.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tv3dg.priors.mini.module_io import load_module
from tv3dg.priors.mini.architecture import IMAGE_SIZE
from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS
from tv3dg.priors.mini.world import COLOUR_NAMES, HIDDEN_EMBLEM_PX, PATTERNS, SHAPES, VISIBLE_EMBLEM_PX

EMBLEM = ("hidden", "visible")
ATTRIBUTE_NAMES = {"shape": SHAPES, "colour": COLOUR_NAMES, "pattern": PATTERNS, "emblem": EMBLEM}


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class AttributeClassifier(nn.Module):
    """A small CNN with one head per attribute; its first block sees full 64 px detail
    (thin stripes are about 1.5 px wide)."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            _block(3, width), nn.MaxPool2d(2), _block(width, 3 * width), nn.MaxPool2d(2),
            _block(3 * width, 6 * width), nn.MaxPool2d(2), _block(6 * width, 8 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.heads = nn.ModuleDict({name: nn.Linear(8 * width, len(names)) for name, names in ATTRIBUTE_NAMES.items()})

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


def emblem_labels(emblem_px: Tensor) -> tuple[Tensor, Tensor]:
    """(label, known) per image: 1 = visible, 0 = hidden; `known` is False for grazing views."""
    visible = emblem_px >= VISIBLE_EMBLEM_PX
    return visible.long(), visible | (emblem_px < HIDDEN_EMBLEM_PX)


def classifier_loss(logits: dict[str, Tensor], attributes: Tensor, emblem_px: Tensor) -> Tensor:
    """Cross-entropy per attribute; the emblem's only on views that are clearly one or the other."""
    loss = sum(F.cross_entropy(logits[name], attributes[:, i]) for i, name in enumerate(("shape", "colour", "pattern")))
    label, known = emblem_labels(emblem_px)
    if bool(known.any()):
        loss = loss + F.cross_entropy(logits["emblem"][known], label[known])
    return loss


def blur(images: Tensor, size: int = 3) -> Tensor:
    """Box blur that keeps the image size: splat renders are softer than sphere-traced ones."""
    return F.avg_pool2d(F.pad(images, (size // 2,) * 4, mode="replicate"), size, stride=1)


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Small shifts, a little blur now and then, and noise: prior samples are less crisp than renders."""
    b = images.shape[0]
    shift = torch.randint(-3, 4, (2,), generator=generator).tolist()
    images = torch.roll(images, shifts=shift, dims=(2, 3))
    blur_amount = (torch.rand(b, 1, 1, 1, generator=generator) < 0.3).float() * 0.6
    images = images * (1 - blur_amount) + blur(images) * blur_amount
    sigma = 0.04 * torch.rand(b, 1, 1, 1, generator=generator)
    return (images + sigma * torch.randn(images.shape, generator=generator)).clamp(0, 1)


def load_classifier(path: Path | str = PACKAGE_WEIGHTS.classifier) -> AttributeClassifier:
    return load_module(AttributeClassifier(), path, "attribute classifier")


def classify(images: Tensor, model: AttributeClassifier | None = None) -> dict[str, list[str]]:
    """Attribute names per image, e.g. {'shape': ['cube', ...], ..., 'emblem': ['visible', ...]}."""
    indices = (model or load_classifier()).classify(images)
    return {name: [ATTRIBUTE_NAMES[name][i] for i in idx.tolist()] for name, idx in indices.items()}
