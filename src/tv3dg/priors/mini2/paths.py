"""Where world 2's mini weights live inside the package (filled stage by stage as training goes)."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_DIR = WEIGHTS_DIR / "model"  # diffusers layout: unet/ vae/ text_encoder/ tokenizer/ scheduler/
VAE_DIR = MODEL_DIR / "vae"
CLASSIFIER = WEIGHTS_DIR / "classifier.safetensors"  # attribute classifier: measurement only
SHAPE_PRIOR = WEIGHTS_DIR / "shape_prior.safetensors"  # caption -> coarse coloured point cloud
