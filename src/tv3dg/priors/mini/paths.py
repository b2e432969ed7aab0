"""Where the mini weights live inside the package (each training stage writes its own files)."""

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
    def ip_adapter(self) -> Path:  # official SD-1.5 key layout
        return self.root / "ip_adapter" / "ip-adapter_mini.safetensors"

    @property
    def image_encoder(self) -> Path:  # the IP-Adapter's CLIPVisionModelWithProjection
        return self.root / "ip_adapter" / "image_encoder"

    @property
    def classifier(self) -> Path:  # attribute classifier: measurement only
        return self.root / "classifier.safetensors"

    @property
    def shape_prior(self) -> Path:  # caption -> coarse coloured point cloud
        return self.root / "shape_prior.safetensors"


PACKAGE_WEIGHTS = WeightPaths()
