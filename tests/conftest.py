"""Fixtures shared by several test files (imports inside the fixtures: a test run that needs none
of them, such as the CUDA tests that benchmarks/gpu.py runs, does not pay for diffusers)."""

import pytest


@pytest.fixture(scope="session")
def reduced_sd15(tmp_path_factory):
    """SD-1.5 + IP-Adapter SD-1.5 at every real width, one layer deep where the real model has several
    (see tests/test_real_architecture.py): about a minute to write, so written once per session."""
    from tv3dg.priors.random_weights import Depth, write_random_sd15

    reduced = Depth(unet_layers_per_block=1, vae_layers_per_block=1, text_layers=1, vision_layers=1)
    return write_random_sd15(tmp_path_factory.mktemp("sd15_full_width"), reduced)
