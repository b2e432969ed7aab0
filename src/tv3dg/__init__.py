"""tv3dg: text + visual prompt to 3D Gaussian Splatting by Classifier Score Matching."""

__version__ = "0.1.0"
