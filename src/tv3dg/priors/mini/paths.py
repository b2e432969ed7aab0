"""Where the bundled mini weights live inside the package."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"
MINI_MODEL_DIR = WEIGHTS_DIR / "model"  # diffusers layout: unet/ vae/ text_encoder/ tokenizer/ scheduler/
MINI_IP_ADAPTER = WEIGHTS_DIR / "ip_adapter" / "ip-adapter_mini.safetensors"  # official SD-1.5 key layout
MINI_IMAGE_ENCODER_DIR = WEIGHTS_DIR / "ip_adapter" / "image_encoder"  # CLIPVisionModelWithProjection
MINI_CLASSIFIER = WEIGHTS_DIR / "classifier.safetensors"  # attribute classifier: measurement only
MINI_SHAPE_PRIOR = WEIGHTS_DIR / "shape_prior.safetensors"  # text -> coarse coloured point cloud
