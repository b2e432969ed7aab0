"""Fixtures shared by several test files."""

import pytest

from tv3dg.priors.random_weights import Depth, RandomSD15, write_random_sd15

# SD-1.5 + IP-Adapter SD-1.5 at every real width, one layer deep where the real model has several
# (see tests/test_real_architecture.py): about a minute to write, so written once per session.
REDUCED = Depth(unet_layers_per_block=1, vae_layers_per_block=1, text_layers=1, vision_layers=1)


@pytest.fixture(scope="session")
def reduced_sd15(tmp_path_factory) -> RandomSD15:
    return write_random_sd15(tmp_path_factory.mktemp("sd15_full_width"), REDUCED)
