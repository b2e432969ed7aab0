"""`tv3dg mini train`: every stage that reproduces the shipped mini weights from nothing.

Stages: `pool` (photo-like renders the prior and VAE learn from), `view_pool` (renders from
every side, for the classifier), `vae`, `classifier`, `shape_prior`, `prior`, then `prior_eyes`
(the exported prior continued with the eyes' latent cells weighted up; 0 steps by default,
so it changes nothing until its trial ships). Each stage is
a pure function of the seed and its settings and is resumable (`stages.py`); a finished stage's
weights are written into the package at once, so the next stage can run in a later session from
a fresh clone (the pools, a few hundred MB, are rendered again there: same seed, same images).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file
from torch import Tensor

from tv3dg.atomic import atomic_path
from tv3dg.priors.mini.architecture import IMAGE_SIZE, MAX_LENGTH, build_train_scheduler, build_vae, image_encoder_input
from tv3dg.priors.mini.captions import CaptionPlan, caption
from tv3dg.priors.mini.classifier import AttributeClassifier, augment, classifier_loss
from tv3dg.priors.mini.data import AppearancePartners, RenderPool, load_pool, pool_latent_means, render_pool, save_pool
from tv3dg.priors.mini.export import export_module, export_prior, export_vae, load_exported_prior
from tv3dg.priors.mini.lr import cosine_lr
from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS, WeightPaths
from tv3dg.priors.mini.prior_modules import PriorModules
from tv3dg.priors.mini.shape_prior import ShapePrior, ShapePriorSchedule, shape_prior_train_step, shape_surfaces
from tv3dg.priors.mini.stages import StageClock, StagePlan, log, run_loop
from tv3dg.priors.mini.tokenizer import save_tokenizer
from tv3dg.priors.mini.world import any_cameras, photo_cameras
from tv3dg.render.cameras import view_direction

STAGES = ("pool", "view_pool", "vae", "classifier", "shape_prior", "prior", "prior_eyes")


@dataclass
class MiniTrainConfig:
    """Every number that decides the shipped weights (strict keys via `tv3dg.config.from_dict`)."""

    seed: int = 0
    pool_size: int = 32768
    view_pool_size: int = 16384
    vae_steps: int = 8000
    vae_batch: int = 32
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-5
    vae_logvar: float = -8.0  # the posterior's fixed log-variance: std 0.018 (see hold_posterior_logvar)
    classifier_steps: int = 2000
    classifier_batch: int = 64
    classifier_lr: float = 2e-3
    shape_prior_steps: int = 1500
    shape_prior_batch: int = 16
    shape_prior_lr: float = 1e-3
    shape_prior_unknown_prob: float = 0.15
    prior_steps: int = 6000
    prior_batch: int = 64
    prior_lr: float = 5e-4
    prior_warmup: int = 200
    prior_eyes_steps: int = 2000  # the shipped prior is trial 5 of this stage (see the model card)
    prior_eyes_lr: float = 5e-4
    eye_loss_weight: float = 20.0  # prior_eyes: a latent cell full of eyes, or of their mirror image on the back, counts 1 + this
    prior_eyes_other_view_word_prob: float = 1.0  # prior_eyes: captions name every view but the front (photo rate for fronts)
    prior_eyes_view_word_error_prob: float = 0.4  # prior_eyes: a named view is a wrong one, so 'back view' steers loosely
    ema_decay: float = 0.999
    uncond_prob: float = 0.1  # no caption and no image: the unconditional score of guidance
    empty_caption_prob: float = 0.1
    shape_only_caption_prob: float = 0.45  # the rest name colour and pattern too
    view_word_prob: float = 0.3  # captions that name the view, as a photo collection's do
    image_prompt_prob: float = 0.65
    appearance_loss_weight: float = 0.1  # colour/pattern read off the image embedding (training only)
    same_shape_partner_prob: float = 0.2
    weights_dir: str = ""  # where finished stages are written and read; "" = the package's weights folder
    checkpoint_minutes: float = 3.0
    threads: int = 1  # on a shared 2-core machine one thread per process is far faster than two


def weight_paths(config: MiniTrainConfig) -> WeightPaths:
    return WeightPaths(Path(config.weights_dir)) if config.weights_dir else PACKAGE_WEIGHTS


def step_generator(config: MiniTrainConfig, stage: str, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(config.seed * 1_000_003 + STAGES.index(stage) * 10_000_019 + step)


def _render(run_dir: Path, name: str, count: int, seed: int, cameras) -> bool:
    def progress(done: int) -> None:
        if done % 4096 == 0 or done == count:
            log(f"{name}: {done}/{count} rendered")

    save_pool(render_pool(count, IMAGE_SIZE, seed, cameras, progress=progress), run_dir / f"{name}.safetensors")
    return True


def stage_pool(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    return _render(run_dir, "pool", config.pool_size, config.seed, photo_cameras)


def stage_view_pool(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    return _render(run_dir, "view_pool", config.view_pool_size, config.seed + 7919, any_cameras)


def hold_posterior_logvar(vae: AutoencoderKL, logvar: float) -> None:
    """Set the posterior's log-variance to `logvar` for every latent and every image.

    Called at the start and after every optimiser step, so the VAE trains with a fixed small
    posterior std. Left free, it rises: at diffusers' default initialisation the std is about 1
    while the latent means spread about 0.3, so sampled latents are mostly noise, the decoder
    learns to ignore most channels and reconstructions stay blurred for thousands of steps
    (measured: 3 of 4 channels at std 0.94 after 1000 steps); started at std 0.018 and left
    free, Adam lifts it back to 0.6 within 400 steps, since with the decoder ignoring the noise
    only the KL term moves it, and Adam's step size does not shrink with a small KL weight.
    SD-1.5's own VAE is nearly deterministic too. The KL term still bounds the means' scale.
    """
    channels = vae.config.latent_channels
    with torch.no_grad():
        vae.quant_conv.weight[channels:].zero_()
        vae.quant_conv.bias[channels:].fill_(logvar)


def stage_vae(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    pool = load_pool(run_dir / "pool.safetensors")
    torch.manual_seed(config.seed)
    vae = build_vae()
    hold_posterior_logvar(vae, config.vae_logvar)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr)

    def train_step(step: int, generator: torch.Generator) -> float:
        half = config.vae_steps // 2  # constant rate, then a cosine decay over the second half
        for group in optimizer.param_groups:
            group["lr"] = config.vae_lr if step < half else cosine_lr(config.vae_lr, step - half, config.vae_steps - half, warmup=0)
        x = pool.float_images(torch.randint(len(pool), (config.vae_batch,), generator=generator)) * 2 - 1
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        loss = F.mse_loss(vae.decode(z).sample, x) + config.vae_kl_weight * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        hold_posterior_logvar(vae, config.vae_logvar)
        return loss.item()

    if not run_loop(run_dir, "vae", clock, config.vae_steps, {"vae": vae}, optimizer, train_step,
                    lambda step: step_generator(config, "vae", step)):
        return False
    export_vae(vae.eval(), pool, weight_paths(config))
    return True


def stage_classifier(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    pool = load_pool(run_dir / "view_pool.safetensors")
    torch.manual_seed(config.seed + 1)
    model = AttributeClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.classifier_lr, weight_decay=1e-4)

    def train_step(step: int, generator: torch.Generator) -> float:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(config.classifier_lr, step, config.classifier_steps)
        model.train()
        index = torch.randint(len(pool), (config.classifier_batch,), generator=generator)
        loss = classifier_loss(model(augment(pool.float_images(index), generator)), pool.attributes[index], pool.emblem_px[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    if not run_loop(run_dir, "classifier", clock, config.classifier_steps, {"classifier": model}, optimizer, train_step,
                    lambda step: step_generator(config, "classifier", step)):
        return False
    export_module(model.eval(), weight_paths(config).classifier)
    return True


def stage_shape_prior(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    torch.manual_seed(config.seed + 2)
    surfaces = shape_surfaces(2048, torch.Generator().manual_seed(config.seed + 2))
    model = ShapePrior()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.shape_prior_lr)
    schedule = ShapePriorSchedule(config.shape_prior_steps, config.shape_prior_lr, config.shape_prior_batch, config.shape_prior_unknown_prob)
    train_step = shape_prior_train_step(model, optimizer, schedule, surfaces)
    if not run_loop(run_dir, "shape_prior", clock, config.shape_prior_steps, {"shape_prior": model}, optimizer, train_step,
                    lambda step: step_generator(config, "shape_prior", step)):
        return False
    export_module(model.eval(), weight_paths(config).shape_prior)
    return True


def pool_latents(run_dir: Path, pool: RenderPool, vae_dir: Path) -> Tensor:
    """The pool's scaled VAE latents (means), from the shipped VAE, cached in the run folder."""
    path = run_dir / "latents.safetensors"
    if not path.is_file():
        vae = AutoencoderKL.from_pretrained(vae_dir, torch_dtype=torch.float32).eval()
        latents = pool_latent_means(vae, pool) * vae.config.scaling_factor
        with atomic_path(path) as tmp:
            save_file({"latents": latents.contiguous()}, str(tmp))
    return load_file(str(path))["latents"]


def plain_words(text: str) -> str:
    """A caption as the generator hands text to the tokenizer (`DiffusersPrior.known_words`)."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def stage_prior(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    """UNet + IP-Adapter + text and image encoders, jointly, on photos: told no camera."""
    return train_prior(run_dir, config, clock, PriorRun("prior", config.prior_steps, config.prior_lr, config.prior_warmup))


def stage_prior_eyes(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    """The exported prior, continued with the face region weighted up. The eyes cover about 1% of
    a latent, so the plain loss barely cares whether they are drawn, or whether a view word says
    they should be: the first prior drew them in about half of its samples whatever the view word."""
    if config.prior_eyes_steps == 0:
        return True
    return train_prior(run_dir, config, clock, PriorRun("prior_eyes", config.prior_eyes_steps, config.prior_eyes_lr,
                                                        config.prior_warmup, config.eye_loss_weight, weight_paths(config),
                                                        config.prior_eyes_other_view_word_prob,
                                                        config.prior_eyes_view_word_error_prob))


def eye_region_weights(pool: RenderPool, index: Tensor, eye_loss_weight: float) -> Tensor:
    """[B, 1, h, w] per-latent-cell loss weights: 1 + `eye_loss_weight` x the cover of the eyes or
    of their mirror image on the back. Weighting where the eyes are drawn and also where a second
    face would be drawn makes the loss care as much about leaving a back bare as about drawing a
    front; weighting the eyes alone skews the learnt odds of eyes by 1 + `eye_loss_weight`, so the
    prior draws them on backs too (a trial that did: 85% of samples prompted "back view")."""
    cover = torch.maximum(pool.emblem_mask[index], pool.back_emblem_mask[index])
    return 1 + eye_loss_weight * cover.float() / 255


@dataclass(frozen=True)
class PriorRun:
    """What differs between the prior's stages: where they start and how they weigh the eyes."""

    stage: str
    steps: int
    lr: float
    warmup: int
    eye_loss_weight: float = 0.0
    start: WeightPaths | None = None  # continue these exported weights (None: fresh modules)
    other_view_word_prob: float | None = None  # how often a caption names a view other than the front (None: the photo rate)
    view_word_error_prob: float = 0.0  # how often a named view is a wrong one


def train_prior(run_dir: Path, config: MiniTrainConfig, clock: StageClock, run: PriorRun) -> bool:
    pool = load_pool(run_dir / "pool.safetensors")
    latents = pool_latents(run_dir, pool, weight_paths(config).vae)
    views = view_direction(pool.elevation_deg, pool.azimuth_deg)
    partners = AppearancePartners(pool)
    tokenizer = save_tokenizer(run_dir / "tokenizer")
    plan = CaptionPlan(view_prob=config.view_word_prob, other_view_prob=run.other_view_word_prob,
                       view_error_prob=run.view_word_error_prob)
    torch.manual_seed(config.seed + 3)
    model = PriorModules(tokenizer)
    if run.start is not None:
        load_exported_prior(model, run.start)
    ema = PriorModules(tokenizer)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    scheduler = build_train_scheduler()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=run.lr, weight_decay=1e-4)

    def captions_for(index: Tensor, generator: torch.Generator) -> tuple[list[str], Tensor]:
        mode = torch.rand(len(index), generator=generator).tolist()
        uncond = torch.rand(len(index), generator=generator) < config.uncond_prob
        texts = []
        for i, obj, m, u in zip(index.tolist(), pool.objects(index), mode, uncond.tolist()):
            if u or m < config.empty_caption_prob:
                texts.append("")
            else:
                full = m >= config.empty_caption_prob + config.shape_only_caption_prob
                texts.append(plain_words(caption(obj, views[i], generator, plan, with_appearance=full)))
        return texts, uncond

    def train_step(step: int, generator: torch.Generator) -> float:
        for group in optimizer.param_groups:
            group["lr"] = run.lr * min(1.0, (step + 1) / run.warmup)
        b = config.prior_batch
        index = torch.randint(len(pool), (b,), generator=generator)
        texts, uncond = captions_for(index, generator)
        with_image = (torch.rand(b, generator=generator) < config.image_prompt_prob) & ~uncond
        partner = partners.sample(index, config.same_shape_partner_prob, generator)
        tokens = tokenizer(texts, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt").input_ids
        text = model.text_encoder(tokens).last_hidden_state
        image_embeds = model.image_encoder(pixel_values=image_encoder_input(pool.float_images(partner))).image_embeds
        appearance_loss = model.appearance_loss(image_embeds, pool.attributes[partner, 1], pool.attributes[partner, 2])
        image_embeds = image_embeds * with_image.float().unsqueeze(-1)
        noise = torch.randn(latents[index].shape, generator=generator)
        t = torch.randint(scheduler.config.num_train_timesteps, (b,), generator=generator)
        noisy = scheduler.add_noise(latents[index], noise, t)
        pred = model.unet(noisy, t, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": [image_embeds.unsqueeze(1)]}).sample
        weights = eye_region_weights(pool, index, run.eye_loss_weight)
        loss = (F.mse_loss(pred, noise, reduction="none") * weights).mean() + config.appearance_loss_weight * appearance_loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters()):
                e.lerp_(p, 1 - config.ema_decay)
        return loss.item()

    if not run_loop(run_dir, run.stage, clock, run.steps, {"model": model, "ema": ema}, optimizer, train_step,
                    lambda step: step_generator(config, run.stage, step)):
        return False
    error = export_prior(run_dir, weight_paths(config), run.stage)
    log(f"{run.stage}: exported; the reloaded weights predict the trained model's noise to {error:.2e}")
    return True


TRAINING_PLAN = StagePlan(
    order=STAGES,
    functions={"pool": stage_pool, "view_pool": stage_view_pool, "vae": stage_vae, "classifier": stage_classifier,
               "shape_prior": stage_shape_prior, "prior": stage_prior, "prior_eyes": stage_prior_eyes},
    inputs={"pool": (), "view_pool": (), "vae": ("pool",), "classifier": ("view_pool",), "shape_prior": (), "prior": ("pool",),
            "prior_eyes": ("pool",)},
)
"""The prior needs the shipped VAE (weights/model/vae), not the VAE stage's run folder; prior_eyes
continues the exported prior (weights/model, weights/ip_adapter), not the prior stage's run folder."""
