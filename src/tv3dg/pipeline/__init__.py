"""The TV-3DG optimisation: config, loop, checkpoints and outputs, each in its own module."""
