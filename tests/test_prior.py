"""DiffusersPrior on tiny random weights loaded through the real loaders: IP-Adapter, PAG, prompts, VAE."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0, PAGCFGIdentitySelfAttnProcessor2_0
from PIL import Image
from safetensors.torch import load_file
from tiny_models import make_tiny_world
from transformers import CLIPImageProcessorPil

from tv3dg.errors import UserError
from tv3dg.priors.config import PriorConfig
from tv3dg.priors.diffusers_prior import DiffusersPrior
from tv3dg.priors.images import clip_preprocess, to_image_batch
from tv3dg.render.cameras import orbit_cameras

UNET_TOLERANCE = dict(atol=1e-4, rtol=1e-4)
"""Float32 UNet outputs (values of order 1) computed in batches of different sizes: convolutions and
matrix products then block their sums differently, and kernels differ between CPUs, which moves
outputs by ~1e-6 here and somewhat more elsewhere. The branches these tests tell apart differ by
more than 1e-3 (asserted below), so 1e-4 still fails on a wrong branch or a leaked image token."""

MID_ATTN1 = "mid_block.attentions.0.transformer_blocks.0.attn1"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("tiny"))


def make_prior(world, **options) -> DiffusersPrior:
    options.setdefault("ip_adapter", str(world.ip_adapter))
    return DiffusersPrior(PriorConfig(model=str(world.model_dir), **options))


@pytest.fixture(scope="module")
def prior(world):
    return make_prior(world)


@pytest.fixture(scope="module")
def text_prior(world):
    return make_prior(world, ip_adapter=None)


def reference_images(seed: int) -> torch.Tensor:
    return torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(seed))


def latents(prior, rows: int = 1, seed: int = 0) -> torch.Tensor:
    shape = (rows, 4, prior.latent_size, prior.latent_size)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_ip_adapter_weights_land_on_the_official_layers(world, prior):
    """ip_adapter.{k} goes to the k-th attention processor (the cross-attention ones), via diffusers' loader."""
    weights = load_file(str(world.ip_adapter))
    processors = prior.unet.attn_processors
    names = list(processors)
    cross = [i for i, name in enumerate(names) if name.endswith("attn2.processor")]
    assert cross == [1, 3, 5, 7]
    for index in cross:
        processor = processors[names[index]]
        assert isinstance(processor, IPAdapterAttnProcessor2_0)
        torch.testing.assert_close(processor.to_k_ip[0].weight, weights[f"ip_adapter.{index}.to_k_ip.weight"])
        torch.testing.assert_close(processor.to_v_ip[0].weight, weights[f"ip_adapter.{index}.to_v_ip.weight"])
    projection = prior.unet.encoder_hid_proj.image_projection_layers[0]
    torch.testing.assert_close(projection.image_embeds.weight, weights["image_proj.proj.weight"])
    torch.testing.assert_close(projection.norm.bias, weights["image_proj.norm.bias"])


def test_ip_scale_zero_equals_text_only(world, text_prior):
    silent = make_prior(world, ip_scale=0.0)
    z = latents(silent)
    with_image = silent.prepare_conditions("a red dog", reference_images(1))
    text_only = text_prior.prepare_conditions("a red dog")
    got = silent.predict_noise(z, 400, with_image, ("negative", "positive"))
    want = text_prior.predict_noise(z, 400, text_only, ("negative", "positive"))
    torch.testing.assert_close(got["positive"], want["positive"], **UNET_TOLERANCE)
    torch.testing.assert_close(got["negative"], want["negative"], **UNET_TOLERANCE)


def test_no_visual_prompt_is_the_text_only_model(prior, text_prior):
    z = latents(prior)
    got = prior.predict_noise(z, 400, prior.prepare_conditions("a red dog"), ("positive", "text"))
    want = text_prior.predict_noise(z, 400, text_prior.prepare_conditions("a red dog"), ("positive",))
    torch.testing.assert_close(got["positive"], want["positive"], **UNET_TOLERANCE)
    torch.testing.assert_close(got["text"], want["positive"], **UNET_TOLERANCE)


def test_image_tokens_change_only_the_image_conditioned_branches(prior):
    z = latents(prior)
    first = prior.predict_noise(z, 400, prior.prepare_conditions("a red dog", reference_images(1)), ("negative", "text", "positive"))
    second = prior.predict_noise(z, 400, prior.prepare_conditions("a red dog", reference_images(2)), ("negative", "text", "positive"))
    assert (first["positive"] - second["positive"]).abs().max() > 1e-3
    assert (first["positive"] - first["text"]).abs().max() > 1e-3
    torch.testing.assert_close(first["negative"], second["negative"], **UNET_TOLERANCE)
    torch.testing.assert_close(first["text"], second["text"], **UNET_TOLERANCE)


def test_style_preset_puts_image_scale_on_the_first_up_block_with_attention(world, prior):
    style = make_prior(world, ip_mode="style", ip_scale=0.8)
    on = {name for name, scale in style.ip_scales.items() if scale > 0}
    assert on and all(name.startswith("up_blocks.1.") for name in on)  # up_blocks.0 has no attention, as in SD-1.5
    assert all(scale == 0.0 for name, scale in style.ip_scales.items() if name not in on)
    assert all(scale == 1.0 for scale in prior.ip_scales.values())  # texture: every layer
    z, image = latents(style), reference_images(1)
    styled = style.predict_noise(z, 400, style.prepare_conditions("a cube", image), ("positive",))["positive"]
    textured = prior.predict_noise(z, 400, prior.prepare_conditions("a cube", image), ("positive",))["positive"]
    assert (styled - textured).abs().max() > 1e-4
    mid_only = make_prior(world, ip_mode="style", style_blocks=["mid"])
    assert {n for n, s in mid_only.ip_scales.items() if s > 0} == {"mid_block.attentions.0.transformer_blocks.0.attn2.processor"}
    with pytest.raises(UserError, match="up_blocks.0"):
        make_prior(world, ip_mode="style", style_blocks=["up_blocks.0"])


def test_pag_changes_only_the_perturbed_branch_and_matches_diffusers(prior):
    z = latents(prior, rows=2)
    conditions = prior.prepare_conditions("a red dog", reference_images(1), orbit_cameras(0.0, [0.0, 180.0], 3.0, 40.0, 16))
    before = dict(prior.unet.attn_processors)
    plain = prior.predict_noise(z, 300, conditions, ("negative", "positive"))
    guided = prior.predict_noise(z, 300, conditions, ("positive_perturbed", "negative", "positive"))
    assert prior.unet.attn_processors == before  # processors restored
    torch.testing.assert_close(guided["negative"], plain["negative"], **UNET_TOLERANCE)
    torch.testing.assert_close(guided["positive"], plain["positive"], **UNET_TOLERANCE)
    assert (guided["positive_perturbed"] - guided["positive"]).abs().max() > 1e-3

    # independent reference: diffusers' own PAG processor on the same layer, batch [c-, c+, c+]
    module = dict(prior.unet.named_modules())[MID_ATTN1]
    saved = module.processor
    module.set_processor(PAGCFGIdentitySelfAttnProcessor2_0())
    try:
        zeros = torch.zeros_like(conditions.image_embeds)
        with torch.no_grad():
            reference = prior.unet(
                z.repeat(3, 1, 1, 1),
                torch.full((6,), 300),
                encoder_hidden_states=torch.cat([conditions.negative, conditions.positive, conditions.positive]),
                added_cond_kwargs={"image_embeds": [torch.cat([zeros, conditions.image_embeds, conditions.image_embeds])]},
            ).sample
    finally:
        module.set_processor(saved)
    torch.testing.assert_close(guided["positive_perturbed"], reference[4:], **UNET_TOLERANCE)


def test_pag_layers_resolve_against_the_unet(world, prior):
    assert prior.pag_modules == [MID_ATTN1]
    up = make_prior(world, ip_adapter=None, pag_layers=["up_blocks.1"])
    assert up.pag_modules == [f"up_blocks.1.attentions.{i}.transformer_blocks.0.attn1" for i in (0, 1)]
    with pytest.raises(UserError, match="PAG layer 'up_blocks.0'"):
        make_prior(world, ip_adapter=None, pag_layers=["up_blocks.0"])


def test_view_dependent_prompts_follow_the_cameras(prior, world):
    cameras = orbit_cameras([10.0, 10.0, 10.0, 80.0], [0.0, 90.0, 180.0, 30.0], 3.0, 40.0, 16)
    conditions = prior.prepare_conditions("a dog", cameras=cameras)
    assert conditions.prompts == ["a dog, front view", "a dog, side view", "a dog, back view", "a dog, overhead view"]
    assert (conditions.positive[0] - conditions.positive[2]).abs().max() > 1e-4
    assert conditions.class_labels is None
    plain = make_prior(world, ip_adapter=None, view_dependent_prompts=False)
    assert plain.prepare_conditions("a dog", cameras=cameras).prompts == ["a dog"] * 4


def test_camera_conditioned_unet_gets_camera_features(tmp_path):
    world = make_tiny_world(tmp_path, camera_conditioned=True)
    prior = make_prior(world)
    assert prior.camera_conditioned and not prior.view_prompts
    cameras = orbit_cameras(15.0, [0.0, 180.0], 3.0, 40.0, 16)
    conditions = prior.prepare_conditions("a dog", cameras=cameras)
    assert conditions.prompts == ["a dog", "a dog"]
    assert conditions.class_labels.shape == (2, 4)
    z = latents(prior).repeat(2, 1, 1, 1)
    noise = prior.predict_noise(z, 300, conditions, ("positive",))["positive"]
    assert (noise[0] - noise[1]).abs().max() > 1e-4  # same latent and prompt, different camera


def test_encode_images_resizes_and_is_differentiable(prior):
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    z = prior.encode_images(images)
    assert z.shape == (2, 4, prior.latent_size, prior.latent_size)
    torch.testing.assert_close(z, prior.encode_images(images))  # posterior mean: deterministic
    z.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    decoded = prior.decode_latents(z.detach())
    assert decoded.shape == (2, 3, prior.resolution, prior.resolution)
    assert 0.0 <= float(decoded.min()) and float(decoded.max()) <= 1.0


def test_counter_counts_calls_and_rows(prior):
    conditions = prior.prepare_conditions("a dog", cameras=orbit_cameras(0.0, [0.0, 90.0, 180.0], 3.0, 40.0, 16))
    calls, rows = prior.counter.calls, prior.counter.rows
    prior.predict_noise(latents(prior, rows=3), 100, conditions, ("negative", "positive", "positive_perturbed"))
    assert (prior.counter.calls - calls, prior.counter.rows - rows) == (1, 9)
    assert prior.unet_evaluations == prior.counter.calls


def test_sample_is_reproducible_and_guided(prior):
    first = prior.sample("a red dog", reference_images(1), steps=4, guidance=5.0, generator=torch.Generator().manual_seed(3))
    again = prior.sample("a red dog", reference_images(1), steps=4, guidance=5.0, generator=torch.Generator().manual_seed(3))
    other = prior.sample("a red dog", reference_images(1), steps=4, guidance=1.0, generator=torch.Generator().manual_seed(3))
    assert first.shape == (1, 3, prior.resolution, prior.resolution)
    torch.testing.assert_close(first, again)
    assert (first - other).abs().max() > 1e-4
    with pytest.raises(UserError, match="guidance"):
        prior.sample("a red dog", guidance=500.0)


def test_image_features_are_differentiable_and_preprocessed_like_clip(prior):
    images = torch.rand(2, 3, 40, 56, requires_grad=True)
    features = prior.image_features(images)
    assert features.shape == (2, 32)
    patches = prior.image_patch_features(images)
    assert patches.shape == (2, 16, 32)  # (32 / 8)^2 patches, class token dropped
    (features.sum() + patches.sum()).backward()
    assert images.grad.abs().sum() > 0

    # the tensor preprocessing agrees with transformers' CLIP image processor on a PIL image
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 5, 7), size=(40, 56), mode="bilinear")
    pil = Image.fromarray((smooth[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
        image_mean=list(prior.clip_preprocess.mean), image_std=list(prior.clip_preprocess.std),
    )
    expected = processor(images=pil, return_tensors="pt").pixel_values
    got = clip_preprocess(to_image_batch(pil), prior.clip_preprocess)
    # PIL and torch bicubic resampling differ by a few grey levels (max 0.015 measured, in CLIP-normalised units)
    assert (got - expected).abs().max() < 0.05


def test_bfloat16_runs_the_same_computation(world, prior):
    """Half precision casts inputs and outputs consistently (bfloat16 on the CPU; float16 needs a GPU)."""
    half = make_prior(world, dtype="bfloat16")
    image, render = reference_images(1), torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    got = half.predict_noise(half.encode_images(render), 300, half.prepare_conditions("a dog", image), ("negative", "positive"))
    want = prior.predict_noise(prior.encode_images(render), 300, prior.prepare_conditions("a dog", image), ("negative", "positive"))
    for branch in want:
        assert got[branch].dtype == torch.float32
        assert float((got[branch] - want[branch]).norm() / want[branch].norm()) < 0.05  # bfloat16 keeps ~3 digits


def test_weights_saved_in_float16_run_in_the_configured_dtype(world, tmp_path):
    """Real checkpoints ship in float16; a float32 run must not keep any module in float16."""
    from transformers import CLIPVisionModelWithProjection

    encoder_dir = tmp_path / "image_encoder"
    CLIPVisionModelWithProjection.from_pretrained(world.image_encoder).half().save_pretrained(encoder_dir)
    (encoder_dir / "preprocessor_config.json").write_bytes((world.image_encoder / "preprocessor_config.json").read_bytes())
    prior = make_prior(world, image_encoder=str(encoder_dir))
    for module in (prior.unet, prior.vae, prior.text_encoder, prior.image_encoder):
        assert {p.dtype for p in module.parameters()} == {torch.float32}
    assert prior.image_features(reference_images(0)).dtype == torch.float32
