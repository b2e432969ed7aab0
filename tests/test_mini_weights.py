"""The shipped mini weights: diffusers/transformers layout, IP-Adapter keys, size, classifier, shape prior."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file
from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from tv3dg.priors.mini.architecture import IMAGE_MEAN, IMAGE_SIZE, IMAGE_STD
from tv3dg.priors.mini.classifier import classify, load_classifier
from tv3dg.priors.mini.evaluate import classifier_accuracy
from tv3dg.priors.ip_adapter import attach_ip_adapter, split_ip_adapter_state
from tv3dg.priors.mini.paths import MINI_CLASSIFIER, MINI_IMAGE_ENCODER_DIR, MINI_IP_ADAPTER, MINI_MODEL_DIR, MINI_SHAPE_PRIOR, WEIGHTS_DIR
from tv3dg.priors.mini.shape_prior import load_shape_prior, surface_points
from tv3dg.priors.mini.world import SHAPES, WorldObject, render_objects, shape_sdf
from tv3dg.render.cameras import orbit_cameras

SURFACE_TOLERANCE = 0.05
"""World units (objects span ~1.6): mean |SDF| of the predicted points; measured 0.017-0.039."""
COVERAGE_TOLERANCE = 0.08
"""Mean distance from true surface samples to the nearest predicted point; 2000 independent true
samples of the same surface are themselves 0.025-0.03 apart on this measure; measured 0.04-0.063."""


def test_shipped_weights_fit_the_size_budget():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*") if p.is_file())
    assert 0 < total <= 20 * 1024 * 1024


def test_model_folder_loads_with_diffusers_and_transformers_classes():
    unet = UNet2DConditionModel.from_pretrained(MINI_MODEL_DIR / "unet")
    vae = AutoencoderKL.from_pretrained(MINI_MODEL_DIR / "vae")
    text_encoder = CLIPTextModel.from_pretrained(MINI_MODEL_DIR / "text_encoder")
    tokenizer = CLIPTokenizer.from_pretrained(MINI_MODEL_DIR / "tokenizer")
    scheduler = DDIMScheduler.from_pretrained(MINI_MODEL_DIR / "scheduler")
    assert unet.config.class_embed_type == "projection" and unet.config.projection_class_embeddings_input_dim == 4
    assert unet.config.encoder_hid_dim_type is None  # the adapter is attached at load time, as in SD-1.5
    assert unet.config.cross_attention_dim == text_encoder.config.hidden_size
    assert vae.config.sample_size == IMAGE_SIZE and 0.2 < vae.config.scaling_factor < 20
    assert next(unet.parameters()).dtype == torch.float32
    assert scheduler.config.prediction_type == "epsilon"
    assert (MINI_MODEL_DIR / "tokenizer" / "vocab.json").is_file() and (MINI_MODEL_DIR / "tokenizer" / "merges.txt").is_file()
    assert len(tokenizer("a red striped cube")["input_ids"]) == 6
    index = json.loads((MINI_MODEL_DIR / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    pipe = StableDiffusionPipeline.from_pretrained(MINI_MODEL_DIR, safety_checker=None, requires_safety_checker=False)
    assert pipe.unet.config.sample_size * 4 == IMAGE_SIZE


def test_ip_adapter_has_the_official_layout_and_steers_the_unet():
    unet = UNet2DConditionModel.from_pretrained(MINI_MODEL_DIR / "unet")
    flat = load_file(str(MINI_IP_ADAPTER))
    cross_layers = sum(name.endswith("attn2.processor") for name in unet.attn_processors)
    expected = {"image_proj.proj.weight", "image_proj.proj.bias", "image_proj.norm.weight", "image_proj.norm.bias"}
    expected |= {f"ip_adapter.{2 * i + 1}.to_{kv}_ip.weight" for i in range(cross_layers) for kv in "kv"}
    assert set(flat) == expected
    encoder = CLIPVisionModelWithProjection.from_pretrained(MINI_IMAGE_ENCODER_DIR)
    assert flat["image_proj.proj.weight"].shape == (4 * unet.config.cross_attention_dim, encoder.config.projection_dim)
    processor = CLIPImageProcessor.from_pretrained(MINI_IMAGE_ENCODER_DIR)
    assert tuple(processor.image_mean) == IMAGE_MEAN and tuple(processor.image_std) == IMAGE_STD
    assert processor.crop_size["height"] == IMAGE_SIZE

    attach_ip_adapter(unet, split_ip_adapter_state(flat))
    red = render_objects([WorldObject(0, 0, 0)], orbit_cameras(10.0, 0.0, 3.2, 40.0, IMAGE_SIZE)).rgb
    blue = render_objects([WorldObject(1, 5, 2)], orbit_cameras(10.0, 0.0, 3.2, 40.0, IMAGE_SIZE)).rgb
    pixels = processor(images=[(img.permute(1, 2, 0).numpy() * 255).round().astype("uint8") for img in torch.cat([red, blue])], return_tensors="pt")
    with torch.no_grad():
        embeds = encoder(pixel_values=pixels.pixel_values).image_embeds.unsqueeze(1)
        latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
        text = torch.zeros(2, 16, unet.config.cross_attention_dim)
        out = unet(latents, torch.tensor([500, 500]), encoder_hidden_states=text, class_labels=torch.zeros(2, 4),
                   added_cond_kwargs={"image_embeds": [embeds]}).sample
    assert not torch.allclose(out[0], out[1], atol=1e-3)


def test_classifier_names_fresh_world_renders(tmp_path):
    model = load_classifier(MINI_CLASSIFIER)
    accuracy = classifier_accuracy(model, 300, torch.Generator().manual_seed(777))
    assert min(accuracy.values()) >= 0.95, accuracy
    image = render_objects([WorldObject(SHAPES.index("cone"), 0, 1)], orbit_cameras(15.0, 40.0, 3.2, 40.0, IMAGE_SIZE)).rgb
    assert classify(image, model) == {"shape": ["cone"], "colour": ["red"], "pattern": ["striped"]}


@pytest.mark.parametrize("shape", SHAPES)
def test_shape_prior_points_lie_on_and_cover_the_true_surface(shape):
    model = load_shape_prior(MINI_SHAPE_PRIOR)
    generator = torch.Generator().manual_seed(0)
    xyz, rgb = model.sample(f"a blue plain {shape}", 2000, generator)
    assert xyz.shape == (2000, 3) and rgb.shape == (2000, 3)
    index = SHAPES.index(shape)
    assert float(shape_sdf(index, xyz).abs().mean()) < SURFACE_TOLERANCE
    truth = surface_points(index, 2000, generator)
    assert float(torch.cdist(truth, xyz).min(dim=1).values.mean()) < COVERAGE_TOLERANCE
    blue = torch.tensor([0.12, 0.25, 0.88])
    assert float((rgb.mean(0) - blue).abs().max()) < 0.1
