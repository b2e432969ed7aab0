"""The memory estimate behind `tv3dg doctor` and the docs' GPU memory table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tv3dg.pipeline.config import build_config
from tv3dg.pipeline.memory import GIB, estimate_memory, markdown_table, sd15_shapes, with_overrides
from tv3dg.priors.random_weights import PUBLISHED_PARAMETERS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "gpu.md"
ADAPTER_PARAMETERS = 22_319_616  # ip-adapter_sd15: 1024 -> 4 x 768 tokens, their norm, to_k_ip/to_v_ip on 16 layers


@pytest.fixture(scope="module")
def shapes():
    return sd15_shapes()


@pytest.fixture(scope="module")
def preset():
    return build_config("sd15", {"prompt": "a corgi"}, [])


def test_sd15_shapes_have_the_released_parameter_counts(shapes):
    expected = dict(PUBLISHED_PARAMETERS, unet=PUBLISHED_PARAMETERS["unet"] + ADAPTER_PARAMETERS)
    assert shapes.parameters == expected
    assert shapes.ip_adapter_parameters == ADAPTER_PARAMETERS


def test_docs_table_is_the_function_output(shapes):
    text = DOCS.read_text(encoding="utf-8")
    table = re.search(r"<!-- memory-table:start -->\n(.*?)\n<!-- memory-table:end -->", text, re.S).group(1)
    assert table == markdown_table(shapes), "regenerate with `python -m tv3dg.pipeline.memory`"


def test_parts_follow_the_settings(shapes, preset):
    base = estimate_memory(preset, shapes)
    vae = "VAE encoder activations for the backward pass"
    one_view = estimate_memory(with_overrides(preset, ("camera.views_per_step=1",)), shapes)
    assert base.parts[vae] == 4 * one_view.parts[vae]
    image = estimate_memory(with_overrides(preset, ("distill.target_space=image",)), shapes)
    assert image.parts[vae] == 0 and image.parts["VAE decoder work space (image target)"] > 0
    assert preset.prior.vae_slicing  # the preset decodes one view at a time
    whole = estimate_memory(with_overrides(preset, ("distill.target_space=image", "prior.vae_slicing=false")), shapes)
    assert whole.parts["VAE decoder work space (image target)"] == 4 * image.parts["VAE decoder work space (image target)"]
    off = estimate_memory(with_overrides(preset, ("prior.text_encoder_on_cpu=true",)), shapes)
    assert off.parts["weights: text encoder"] == 0 and base.parts["weights: text encoder"] == 123_060_480 * 2
    full = estimate_memory(with_overrides(preset, ("prior.dtype=float32",)), shapes)
    assert full.parts["weights: VAE"] == 2 * base.parts["weights: VAE"]
    assert full.parts[vae] == pytest.approx(2 * base.parts[vae], rel=0.1)  # group-norm statistics are float32 in both
    quarter = estimate_memory(with_overrides(preset, ("prior.resolution=256",)), shapes)
    assert quarter.parts[vae] == pytest.approx(base.parts[vae] / 4, rel=0.1)  # with the pixels (attention: faster)
    no_sgc = estimate_memory(with_overrides(preset, ("sgc.enabled=false",)), shapes)
    assert no_sgc.parts["SGC: image encoder backward"] == 0
    cpu = estimate_memory(preset, shapes, cuda=False)
    assert cpu.parts["CUDA context"] == 0 and base.total - cpu.total == base.parts["CUDA context"]


def test_vae_encoder_activations_per_512_px_view(shapes):
    """About 1.6 GiB of saved tensors per 512 px view in float16: what makes 4 views per step need 16 GB."""
    assert 1.4 * GIB < shapes.vae_encoder_saved(512, "float16") < 1.9 * GIB
