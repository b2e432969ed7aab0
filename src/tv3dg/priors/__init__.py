"""Diffusion priors: one interface, implemented on diffusers for SD-1.5 and the bundled mini prior."""
