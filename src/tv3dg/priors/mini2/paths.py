"""Where world 2's mini weights live inside the package (filled stage by stage as training goes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class WeightPaths:
    """The shipped files under one weights folder (the package's, or another for experiments)."""

    root: Path = WEIGHTS_DIR

    @property
    def model(self) -> Path:  # diffusers layout: unet/ vae/ text_encoder/ tokenizer/ scheduler/
        return self.root / "model"

    @property
    def vae(self) -> Path:
        return self.model / "vae"

    @property
    def classifier(self) -> Path:  # attribute classifier: measurement only
        return self.root / "classifier.safetensors"

    @property
    def shape_prior(self) -> Path:  # caption -> coarse coloured point cloud
        return self.root / "shape_prior.safetensors"


PACKAGE_WEIGHTS = WeightPaths()
