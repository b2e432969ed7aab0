"""The bundled mini prior: a procedural world, a tiny diffusers-format model trained on it, and its training."""
