"""Cameras and the differentiable Gaussian rasterizer."""
