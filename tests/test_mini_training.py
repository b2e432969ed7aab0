"""Mini-prior training machinery: IP-Adapter layout round trip, resumable stages, partner pairs,
the appearance supervision of the image embedding."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tv3dg.priors.ip_adapter import attach_ip_adapter, split_ip_adapter_state
from tv3dg.priors.mini.architecture import IMAGE_SIZE, LATENT_CHANNELS, LATENT_SIZE, MAX_LENGTH, TEXT_DIM, build_unet, image_encoder_input
from tv3dg.priors.mini.data import AppearancePartners, render_pool, save_pool
from tv3dg.priors.mini.ip_adapter import extract_ip_adapter_state, initial_ip_adapter_state, unet_without_ip_adapter
from tv3dg.priors.mini.prior_modules import PriorModules
from tv3dg.priors.mini.stages import StageClock
from tv3dg.priors.mini.tokenizer import save_tokenizer
from tv3dg.priors.mini.training import MiniTrainConfig, stage_vae
from tv3dg.priors.mini.world import photo_cameras


def _unet_output(unet, image_embeds: torch.Tensor) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE, generator=generator)
    text = torch.randn(2, MAX_LENGTH, TEXT_DIM, generator=generator)
    with torch.no_grad():
        return unet(latents, torch.tensor([10, 600]), encoder_hidden_states=text, added_cond_kwargs={"image_embeds": [image_embeds]}).sample


def test_ip_adapter_round_trips_through_the_official_layout_and_diffusers_loader(tmp_path):
    torch.manual_seed(0)
    trained = build_unet()
    attach_ip_adapter(trained, initial_ip_adapter_state(trained))
    with torch.no_grad():  # stand-in for training: move every adapter weight away from its start
        for name, p in trained.named_parameters():
            if "processor" in name or "encoder_hid_proj" in name:
                p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "ip-adapter_mini.safetensors"
    save_file(extract_ip_adapter_state(trained), str(path))

    flat = load_file(str(path))
    cross_layers = sum(name.endswith("attn2.processor") for name in trained.attn_processors)
    expected = {"image_proj.proj.weight", "image_proj.proj.bias", "image_proj.norm.weight", "image_proj.norm.bias"}
    expected |= {f"ip_adapter.{2 * i + 1}.to_{kv}_ip.weight" for i in range(cross_layers) for kv in "kv"}
    assert set(flat) == expected

    base = unet_without_ip_adapter(trained, build_unet())
    assert base.config.encoder_hid_dim_type is None
    assert not any("processor" in k or "encoder_hid_proj" in k for k in base.state_dict())
    attach_ip_adapter(base, split_ip_adapter_state(flat))
    embeds = torch.randn(2, 1, 64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(_unet_output(base, embeds), _unet_output(trained, embeds), atol=1e-6)
    # and the image tokens matter: a different embedding changes the prediction
    assert not torch.allclose(_unet_output(base, embeds), _unet_output(base, torch.zeros_like(embeds)), atol=1e-4)


def test_zero_image_embeddings_equal_the_adapter_switched_off():
    """Zero projection biases (frozen in training) make 'no image' identical to IP scale 0."""
    torch.manual_seed(0)
    unet = build_unet()
    attach_ip_adapter(unet, initial_ip_adapter_state(unet))
    zeros = torch.zeros(2, 1, 64)
    with_zero_tokens = _unet_output(unet, zeros)
    for processor in unet.attn_processors.values():
        if hasattr(processor, "scale"):
            processor.scale = [0.0]
    assert torch.allclose(with_zero_tokens, _unet_output(unet, zeros), atol=1e-6)


def test_appearance_partners_share_colour_and_pattern_but_not_shape():
    pool = render_pool(72, 32, seed=5, cameras=photo_cameras)
    partners = AppearancePartners(pool)
    index = torch.arange(len(pool))
    chosen = partners.sample(index, same_shape_prob=0.0, generator=torch.Generator().manual_seed(0))
    a, b = pool.attributes[index], pool.attributes[chosen]
    assert torch.equal(a[:, 1:3], b[:, 1:3])
    differs = a[:, 0] != b[:, 0]
    # a different shape whenever the pool has one with that appearance
    possible = torch.tensor([bool((pool.attributes[partners.groups[int(partners.appearance[i])], 0] != a[i, 0]).any()) for i in index])
    assert torch.equal(differs, possible)


def test_a_stage_resumed_in_chunks_equals_one_uninterrupted_run(tmp_path):
    pool = render_pool(32, IMAGE_SIZE, seed=0, cameras=photo_cameras)
    for run in ("straight", "chunked"):
        (tmp_path / run).mkdir()
        save_pool(pool, tmp_path / run / "pool.safetensors")

    def run_vae(run_dir: Path, steps: int) -> None:
        config = MiniTrainConfig(vae_steps=steps, vae_batch=4, checkpoint_minutes=1e6, weights_dir=str(run_dir / "weights"))
        assert stage_vae(run_dir, config, StageClock(run_dir, "vae", float("inf"), config.checkpoint_minutes))

    run_vae(tmp_path / "straight", 4)
    run_vae(tmp_path / "chunked", 2)
    run_vae(tmp_path / "chunked", 4)
    straight = load_file(str(tmp_path / "straight" / "vae_state.safetensors"))
    chunked = load_file(str(tmp_path / "chunked" / "vae_state.safetensors"))
    assert straight.keys() == chunked.keys()
    for key in straight:
        assert torch.equal(straight[key], chunked[key]), key


def test_appearance_loss_trains_the_image_encoder_to_name_colour_and_pattern(tmp_path):
    """The auxiliary head must reach the image encoder (a detach would silently switch it off)
    and be learnable: a few steps on a small pool lower it."""
    torch.manual_seed(0)
    model = PriorModules(save_tokenizer(tmp_path / "tokenizer"))
    pool = render_pool(48, IMAGE_SIZE, seed=3, cameras=photo_cameras)
    images = image_encoder_input(pool.float_images(torch.arange(len(pool))))
    colour, pattern = pool.attributes[:, 1], pool.attributes[:, 2]
    params = list(model.image_encoder.parameters()) + list(model.appearance_head.parameters())
    optimizer = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model.appearance_loss(model.image_encoder(pixel_values=images).image_embeds, colour, pattern)
        optimizer.zero_grad()
        loss.backward()
        assert model.image_encoder.vision_model.embeddings.patch_embedding.weight.grad.abs().sum() > 0
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
