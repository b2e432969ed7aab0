"""Each loss against an independent computation of its formula, its UNet cost, and the gradient path."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers.models.attention_processor import PAGIdentitySelfAttnProcessor2_0
from tiny_models import make_tiny_world

from tv3dg.config import from_dict
from tv3dg.distill.config import DistillConfig
from tv3dg.distill.losses import compute_distillation, decoded_target_loss, distillation_loss
from tv3dg.distill.timesteps import sample_timestep, timestep_range
from tv3dg.errors import UserError
from tv3dg.priors.config import PriorConfig
from tv3dg.priors.diffusers_prior import DiffusersPrior
from tv3dg.render.cameras import orbit_cameras

T, SEED, ROWS = 420, 7, 2


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    world = make_tiny_world(tmp_path_factory.mktemp("tiny"))
    return DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=str(world.ip_adapter), negative_prompt="blurry"))


@pytest.fixture(scope="module")
def conditions(prior):
    reference = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    return prior.prepare_conditions("a red dog", reference, orbit_cameras(10.0, [0.0, 180.0], 3.0, 40.0, 16))


@pytest.fixture(scope="module")
def z0(prior):
    return torch.randn(ROWS, 4, prior.latent_size, prior.latent_size, generator=torch.Generator().manual_seed(0))


class Reference:
    """Noise predictions from plain, one-branch-per-call UNet evaluations (no batching, no helpers)."""

    def __init__(self, prior, conditions):
        self.prior, self.c = prior, conditions
        zeros = torch.zeros_like(conditions.image_embeds)
        self.inputs = {
            "negative": (conditions.negative, zeros),
            "positive": (conditions.positive, conditions.image_embeds),
            "text": (conditions.positive, zeros),
            "empty": (conditions.empty, zeros),
        }

    def eps(self, z, t, branch):
        text, image = self.inputs[branch]
        with torch.no_grad():
            return self.prior.unet(z, torch.full((z.shape[0],), t), encoder_hidden_states=text,
                                   added_cond_kwargs={"image_embeds": [image]}).sample

    def eps_perturbed(self, z, t):
        """c+ through diffusers' own PAG processor (batch [c+, c+], second half perturbed)."""
        module = dict(self.prior.unet.named_modules())["mid_block.attentions.0.transformer_blocks.0.attn1"]
        saved = module.processor
        module.set_processor(PAGIdentitySelfAttnProcessor2_0())
        try:
            with torch.no_grad():
                out = self.prior.unet(z.repeat(2, 1, 1, 1), torch.full((2 * z.shape[0],), t),
                                      encoder_hidden_states=self.c.positive.repeat(2, 1, 1),
                                      added_cond_kwargs={"image_embeds": [self.c.image_embeds.repeat(2, 1, 1)]}).sample
        finally:
            module.set_processor(saved)
        return out[z.shape[0]:]

    def invert(self, z, path):
        """DDIM inversion written out: x0 = (z - sqrt(1-a) e) / sqrt(a); z' = sqrt(a') x0 + sqrt(1-a') e."""
        abar = self.prior.alphas_cumprod
        e = None
        for a, b in zip(path[:-1], path[1:]):
            e = self.eps(z, a, "empty")
            x0 = (z - (1 - abar[a]).sqrt() * e) / abar[a].sqrt()
            z = abar[b].sqrt() * x0 + (1 - abar[b]).sqrt() * e
        return z, e

    def noised(self, z0, t):
        noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(SEED))
        abar = self.prior.alphas_cumprod[t]
        return abar.sqrt() * z0 + (1 - abar).sqrt() * noise, noise


def expected_gradient(prior, conditions, z0, config: DistillConfig):
    ref = Reference(prior, conditions)
    s, s_pag, s_txt, s_img = config.cfg_scale, config.pag_scale, config.text_scale, config.image_scale
    weight = 1 - float(prior.alphas_cumprod[T])  # weighting "sds"

    def classifier(z):
        neg, pos = ref.eps(z, T, "negative"), ref.eps(z, T, "positive")
        if config.split_guidance:
            txt = ref.eps(z, T, "text")
            return neg, pos, s_txt * (txt - neg) + s_img * (pos - txt)
        return neg, pos, s * (pos - neg)

    if config.loss in ("sds", "csd"):
        z_t, noise = ref.noised(z0, T)
        neg, _, c = classifier(z_t)
        return weight * (neg + c - noise if config.loss == "sds" else c)
    if config.loss == "ism":
        s_t = T - int(config.ism_delta)
        z_s, _ = ref.invert(z0, [0, s_t // 2, s_t])  # 2 even moves to s
        z_t, eps_s = ref.invert(z_s, [s_t, T])  # one more move to t; its noise is the target
        neg, _, c = classifier(z_t)
        return weight * (neg + c - eps_s)
    z_t, _ = ref.invert(z0, [0, T // 2, T])
    _, pos, c = classifier(z_t)
    if config.loss == "csm" or s_pag == 0:
        return weight * c
    return weight * (c + s_pag * (pos - ref.eps_perturbed(z_t, T)))


CASES = {
    "sds": DistillConfig(loss="sds", cfg_scale=20.0),
    "csd": DistillConfig(loss="csd", cfg_scale=20.0),
    "ism": DistillConfig(loss="ism", cfg_scale=7.5, ism_delta=100.0),
    "csm": DistillConfig(loss="csm", cfg_scale=7.5),
    "vpcsm": DistillConfig(loss="vpcsm", cfg_scale=7.5, pag_scale=3.0),
    "vpcsm_split": DistillConfig(loss="vpcsm", split_guidance=True, text_scale=7.5, image_scale=2.0, pag_scale=1.5),
    "sds_split": DistillConfig(loss="sds", split_guidance=True, text_scale=10.0, image_scale=4.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_loss_matches_its_formula(prior, conditions, z0, case):
    config = CASES[case]
    grad, logs = compute_distillation(prior, z0, conditions, step=0, config=config,
                                      generator=torch.Generator().manual_seed(SEED), timestep=T)
    expected = expected_gradient(prior, conditions, z0, config)
    # Float32: the reference makes its UNet calls in other batch groupings, which moves each prediction
    # by ~1e-6; guidance scales up to 20 on a difference of two predictions make that ~4e-5. A formula
    # error (a missing or extra term, another noise) changes the gradient by far more than 1e-4.
    torch.testing.assert_close(grad, expected, atol=1e-4, rtol=1e-4)
    assert logs["t"] == T and math.isclose(logs["weight"], 1 - float(prior.alphas_cumprod[T]), rel_tol=1e-6)


@pytest.mark.parametrize(
    "config, calls, rows",
    [
        (DistillConfig(loss="sds"), 1, 2 * ROWS),
        (DistillConfig(loss="csd"), 1, 2 * ROWS),
        (DistillConfig(loss="ism", inversion_steps=2, ism_delta=100.0), 4, 3 * ROWS + 2 * ROWS),  # 2 to s, 1 to t, teacher
        (DistillConfig(loss="csm", inversion_steps=3), 4, 3 * ROWS + 2 * ROWS),
        (DistillConfig(loss="vpcsm", inversion_steps=3), 4, 3 * ROWS + 3 * ROWS),  # one call on [c-, c+, c+ptb]
        (DistillConfig(loss="vpcsm", inversion_steps=1, split_guidance=True), 2, ROWS + 4 * ROWS),
        (DistillConfig(loss="vpcsm", inversion_steps=2, pag_scale=0.0), 3, 2 * ROWS + 2 * ROWS),
        (DistillConfig(loss="csm", inversion_steps=5, inversion_stride=200), 4, 3 * ROWS + 2 * ROWS),  # 0-200-400-420
    ],
)
def test_unet_evaluations_per_loss(prior, conditions, z0, config, calls, rows):
    before = (prior.counter.calls, prior.counter.rows)
    _, logs = compute_distillation(prior, z0, conditions, 0, config, torch.Generator().manual_seed(0), timestep=T)
    assert (prior.counter.calls - before[0], prior.counter.rows - before[1]) == (calls, rows)
    assert logs["unet_calls"] == calls


def test_gradient_reaches_the_render_through_the_vae_encoder(prior, conditions):
    render = torch.rand(ROWS, 3, 32, 32, requires_grad=True)
    latents = prior.encode_images(render)
    grad, _ = compute_distillation(prior, latents, conditions, 0, DistillConfig(loss="vpcsm"), torch.Generator().manual_seed(0), timestep=T)
    loss = distillation_loss(latents, grad)
    loss.backward()
    expected = torch.autograd.functional.vjp(prior.encode_images, render.detach(), grad / ROWS)[1]
    # the same backward pass twice; the loss forms grad as z0 - (z0 - grad), which rounds each element by
    # ~eps * |z0| before the encoder's backward: rtol 1e-4 with a small atol for near-zero pixels
    torch.testing.assert_close(render.grad, expected, atol=1e-6, rtol=1e-4)
    assert render.grad.abs().sum() > 0
    assert math.isclose(float(loss.detach()), 0.5 * float(grad.square().sum()) / ROWS, rel_tol=1e-5)


def test_image_space_target_is_the_decoded_step(prior, conditions):
    render = torch.rand(ROWS, 3, 20, 20, requires_grad=True)  # not the prior's size: the target is resized
    with torch.no_grad():
        latents = prior.encode_images(render)
    grad, _ = compute_distillation(prior, latents, conditions, 0, DistillConfig(loss="vpcsm"), torch.Generator().manual_seed(0), timestep=T)
    decoded = torch.nn.functional.interpolate(prior.decode_latents(latents - grad), size=(20, 20), mode="bilinear",
                                              align_corners=False, antialias=prior.resolution > 20)
    decoded_target_loss(prior, render, latents, grad).backward()
    torch.testing.assert_close(render.grad, (render.detach() - decoded) / ROWS, atol=1e-5, rtol=1e-4)
    assert render.grad.abs().sum() > 0


def test_weighting_and_clipping(prior, conditions, z0):
    def run(**options):
        config = DistillConfig(loss="csm", **options)
        return compute_distillation(prior, z0, conditions, 0, config, timestep=T)[0]

    abar = float(prior.alphas_cumprod[T])
    uniform = run(weighting="uniform")
    torch.testing.assert_close(run(weighting="sqrt"), uniform * math.sqrt((1 - abar) / abar), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(run(weighting="sds"), uniform * (1 - abar), atol=1e-5, rtol=1e-5)
    clipped = run(weighting="uniform", grad_clip=0.05)
    assert uniform.abs().max() > 0.05 and clipped.abs().max() <= torch.tensor(0.05)
    torch.testing.assert_close(clipped, uniform.clamp(-0.05, 0.05))


def test_timestep_range_anneals():
    config = DistillConfig(t_min=0.02, t_max=[0, 0.98, 0.5, 100])
    assert timestep_range(config, 0, 1000) == (20, 980)
    assert timestep_range(config, 50, 1000) == (20, 740)
    assert timestep_range(config, 500, 1000) == (20, 500)
    generator = torch.Generator().manual_seed(0)
    late = [sample_timestep(config, 500, 1000, generator) for _ in range(200)]
    assert 20 <= min(late) and max(late) <= 500 and max(late) > 400


@pytest.mark.parametrize(
    "data, message",
    [
        ({"cfg_scale": 0}, r"cfg_scale 0.0 is out of range; it must lie in \(0, 200\]"),
        ({"cfg_scale": [0, 100, 500, 1000]}, "cfg_scale 500.0 is out of range"),
        ({"pag_scale": -1}, r"pag_scale -1.0 is out of range; it must lie in \[0, 50\]"),
        ({"image_scale": 1000}, "image_scale 1000.0 is out of range"),
        ({"loss": "vsd"}, "must be one of"),
        ({"t_min": 0.7, "t_max": 0.6}, "t_min must stay below t_max"),
        ({"cfg": 7.5}, "unknown config key 'cfg'"),
    ],
)
def test_config_rejects_bad_values(data, message):
    with pytest.raises(UserError, match=message):
        from_dict(DistillConfig, data)


def test_one_table_names_the_losses_for_configs_and_commands():
    import typing

    from tv3dg.cli import build_parser
    from tv3dg.distill.objectives import LOSS_NAMES, LOSSES

    assert LOSS_NAMES == tuple(LOSSES) and LOSS_NAMES[0] == DistillConfig().loss
    assert typing.get_args(typing.get_type_hints(DistillConfig)["loss"]) == LOSS_NAMES
    subparsers = next(a for a in build_parser()._actions if a.dest == "command").choices
    for command in ("generate", "2d"):
        loss_flag = next(a for a in subparsers[command]._actions if a.dest == "loss")
        assert tuple(loss_flag.choices) == LOSS_NAMES
