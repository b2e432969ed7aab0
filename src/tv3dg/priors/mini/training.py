"""`tv3dg mini train`: every stage that reproduces the shipped mini weights from nothing.

Stages run in order and are resumable: each saves its state to the run folder every few
minutes, so training can run in chunks (`--max-minutes`) or in the background. Randomness in
step `k` of a stage comes from a generator seeded with (seed, stage, k), so an interrupted and
resumed run makes the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from diffusers import UNet2DConditionModel
from torch import Tensor
from transformers import CLIPVisionModelWithProjection

from tv3dg.atomic import atomic_path, write_text_atomic
from tv3dg.errors import UserError
from tv3dg.priors.camera_conditioning import camera_features
from tv3dg.priors.mini.architecture import IMAGE_SIZE, build_image_encoder, image_encoder_input, build_text_encoder, build_train_scheduler, build_unet, build_vae
from tv3dg.priors.mini.captions import caption
from tv3dg.priors.mini.checkpoint import load_training_state, save_training_state
from tv3dg.priors.mini.lr import cosine_lr
from tv3dg.priors.mini.classifier import AttributeClassifier, augment, save_classifier
from tv3dg.priors.mini.data import AppearancePartners, load_pool, render_pool, save_pool
from tv3dg.priors.ip_adapter import attach_ip_adapter
from tv3dg.priors.mini.ip_adapter import initial_ip_adapter_state
from tv3dg.priors.mini.shape_prior import ShapePrior, ShapePriorSchedule, save_shape_prior, shape_prior_train_step, surface_points, target_albedo
from tv3dg.priors.mini.tokenizer import MAX_LENGTH, save_tokenizer
from tv3dg.priors.mini.world import COLOUR_NAMES, PATTERNS, SHAPES

STAGES = ("pool", "vae", "classifier", "shape_prior", "prior")


@dataclass
class MiniTrainConfig:
    """Every number that decides the shipped weights (strict keys via `tv3dg.config.from_dict`)."""

    seed: int = 0
    pool_size: int = 32768
    vae_steps: int = 2000
    vae_batch: int = 32
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-5
    classifier_steps: int = 1200
    classifier_batch: int = 96
    classifier_lr: float = 2e-3
    shape_prior_steps: int = 1200
    shape_prior_batch: int = 16
    shape_prior_lr: float = 1e-3
    shape_prior_unknown_prob: float = 0.15
    prior_steps: int = 6000
    prior_batch: int = 64
    prior_lr: float = 5e-4
    prior_warmup: int = 200
    ema_decay: float = 0.999
    uncond_prob: float = 0.1
    shape_only_caption_prob: float = 0.45
    empty_caption_prob: float = 0.1
    image_prompt_prob: float = 0.65
    appearance_loss_weight: float = 0.1  # colour/pattern read off the image embedding (training only)
    same_shape_partner_prob: float = 0.2
    checkpoint_minutes: float = 3.0
    threads: int = 1  # on a shared 2-core machine one thread per process is far faster than two


def step_generator(config: MiniTrainConfig, stage: str, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(config.seed * 1_000_003 + STAGES.index(stage) * 10_000_019 + step)


class StageClock:
    """Tracks a stage's wall time across chunks and says when to checkpoint or stop."""

    def __init__(self, run_dir: Path, stage: str, deadline: float, checkpoint_minutes: float):
        self.path = run_dir / "wall_times.json"
        self.stage = stage
        self.deadline = deadline
        self.interval = checkpoint_minutes * 60
        self.started = self.last_save = time.time()

    def due(self) -> bool:
        return time.time() - self.last_save >= self.interval

    def expired(self) -> bool:
        return time.time() >= self.deadline

    def record(self) -> None:
        now = time.time()
        times = json.loads(self.path.read_text()) if self.path.is_file() else {}
        times[self.stage] = times.get(self.stage, 0.0) + (now - self.started)
        write_text_atomic(self.path, json.dumps(times, indent=1))
        self.started = self.last_save = now


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def done_marker(run_dir: Path, stage: str) -> Path:
    return run_dir / f"{stage}.done"


def stage_pool(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    save_pool(render_pool(config.pool_size, IMAGE_SIZE, config.seed), run_dir / "pool.safetensors")
    return True


def run_loop(
    run_dir: Path, stage: str, clock: StageClock, steps: int, modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer, train_step: Callable[[int, torch.Generator], float],
    generator: Callable[[int], torch.Generator],
) -> bool:
    """The resumable loop every stage shares: restore, step until done or out of time, checkpoint.

    `generator(step)` is the random source of a step, so a resumed run repeats an uninterrupted one.
    """
    state_path = run_dir / f"{stage}_state.safetensors"
    start = load_training_state(state_path, modules, optimizer)
    log(f"{stage}: from step {start} of {steps}")
    running = None
    for step in range(start, steps):
        loss = train_step(step, generator(step))
        running = loss if running is None else 0.98 * running + 0.02 * loss
        if (step + 1) % 50 == 0:
            log(f"{stage}: step {step + 1}/{steps} loss {running:.4f}")
        if step + 1 == steps or clock.due() or clock.expired():
            save_training_state(state_path, modules, optimizer, step + 1)
            clock.record()
            if clock.expired() and step + 1 < steps:
                return False
    return True


def stage_vae(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    pool = load_pool(run_dir / "pool.safetensors")
    torch.manual_seed(config.seed)
    vae = build_vae()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr)

    def train_step(step: int, generator: torch.Generator) -> float:
        half = config.vae_steps // 2  # constant rate, then a cosine decay over the second half
        for group in optimizer.param_groups:
            group["lr"] = config.vae_lr if step < half else cosine_lr(config.vae_lr, step - half, config.vae_steps - half, warmup=0)
        x = pool.float_images(torch.randint(len(pool), (config.vae_batch,), generator=generator)) * 2 - 1
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        recon = vae.decode(z).sample
        loss = F.mse_loss(recon, x) + config.vae_kl_weight * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    if not run_loop(run_dir, "vae", clock, config.vae_steps, {"vae": vae}, optimizer, train_step,
                    lambda step: step_generator(config, "vae", step)):
        return False
    vae.eval()
    with torch.no_grad():
        latents = torch.cat([vae.encode(pool.float_images(torch.arange(i, min(i + 512, len(pool)))) * 2 - 1).latent_dist.mean for i in range(0, len(pool), 512)])
    scaling = 1.0 / float(latents.std())
    with atomic_path(run_dir / "latents.safetensors") as tmp:
        save_file({"latents": latents.contiguous(), "scaling_factor": torch.tensor(scaling)}, str(tmp))
    log(f"vae: latent std {1 / scaling:.4f}, scaling_factor {scaling:.4f}")
    return True


def stage_classifier(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    pool = load_pool(run_dir / "pool.safetensors")
    torch.manual_seed(config.seed + 1)
    model = AttributeClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.classifier_lr, weight_decay=1e-4)

    def train_step(step: int, generator: torch.Generator) -> float:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(config.classifier_lr, step, config.classifier_steps)
        model.train()
        index = torch.randint(len(pool), (config.classifier_batch,), generator=generator)
        logits = model(augment(pool.float_images(index), generator))
        loss = sum(F.cross_entropy(logits[name], pool.attributes[index, i]) for i, name in enumerate(("shape", "colour", "pattern")))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    if not run_loop(run_dir, "classifier", clock, config.classifier_steps, {"classifier": model}, optimizer, train_step,
                    lambda step: step_generator(config, "classifier", step)):
        return False
    save_classifier(model.eval(), run_dir / "classifier.safetensors")
    return True


def stage_shape_prior(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    torch.manual_seed(config.seed + 2)
    generator = torch.Generator().manual_seed(config.seed + 2)
    surfaces = torch.stack([surface_points(s, 2048, generator) for s in range(len(SHAPES))])
    model = ShapePrior()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.shape_prior_lr)
    schedule = ShapePriorSchedule(config.shape_prior_steps, config.shape_prior_lr, config.shape_prior_batch, config.shape_prior_unknown_prob)
    train_step = shape_prior_train_step(model, optimizer, schedule, surfaces, target_albedo)
    if not run_loop(run_dir, "shape_prior", clock, config.shape_prior_steps, {"shape_prior": model}, optimizer, train_step,
                    lambda step: step_generator(config, "shape_prior", step)):
        return False
    save_shape_prior(model.eval(), run_dir / "shape_prior.safetensors")
    return True


class PriorModules(torch.nn.Module):
    """Everything the diffusion stage trains: UNet (+ IP-Adapter), text and image encoders.

    The image projection's biases stay 0, so zero image embeddings (the "no image" condition)
    give zero image tokens and hence exactly no IP contribution: training without an image
    equals running the adapter at scale 0, as a text-only caller does.

    `appearance_head` (not shipped) reads colour and pattern off the image embedding. The
    diffusion loss alone left pattern weakly encoded (a linear probe read it 81% of the time
    against 100% for colour); supervising it makes the image tokens carry the appearance, the
    role CLIP's text-aligned embedding plays for a real IP-Adapter.
    """

    def __init__(self, tokenizer, unet: UNet2DConditionModel | None = None, image_encoder: CLIPVisionModelWithProjection | None = None,
                 appearance: tuple[int, int] = (len(COLOUR_NAMES), len(PATTERNS))):
        super().__init__()
        self.unet = build_unet() if unet is None else unet
        attach_ip_adapter(self.unet, initial_ip_adapter_state(self.unet))
        projection = self.unet.encoder_hid_proj.image_projection_layers[0]
        projection.image_embeds.bias.requires_grad_(False)
        projection.norm.bias.requires_grad_(False)
        self.text_encoder = build_text_encoder(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.model_max_length)
        self.image_encoder = build_image_encoder() if image_encoder is None else image_encoder
        self.colours = appearance[0]
        self.appearance_head = torch.nn.Linear(self.image_encoder.config.projection_dim, sum(appearance))

    def appearance_loss(self, image_embeds: Tensor, colour: Tensor, pattern: Tensor) -> Tensor:
        logits = self.appearance_head(image_embeds)
        return F.cross_entropy(logits[:, :self.colours], colour) + F.cross_entropy(logits[:, self.colours:], pattern)


def stage_prior(run_dir: Path, config: MiniTrainConfig, clock: StageClock) -> bool:
    pool = load_pool(run_dir / "pool.safetensors")
    latent_file = load_file(str(run_dir / "latents.safetensors"))
    latents = latent_file["latents"] * latent_file["scaling_factor"]
    partners = AppearancePartners(pool)
    tokenizer = save_tokenizer(run_dir / "tokenizer")
    torch.manual_seed(config.seed + 3)
    model = PriorModules(tokenizer)
    ema = PriorModules(tokenizer)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    scheduler = build_train_scheduler()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.prior_lr, weight_decay=1e-4)

    def train_step(step: int, generator: torch.Generator) -> float:
        for group in optimizer.param_groups:
            group["lr"] = config.prior_lr * min(1.0, (step + 1) / config.prior_warmup)
        b = config.prior_batch
        index = torch.randint(len(pool), (b,), generator=generator)
        mode = torch.rand(b, generator=generator)
        templates = torch.randint(1000, (b,), generator=generator).tolist()
        uncond = torch.rand(b, generator=generator) < config.uncond_prob
        captions = []
        for obj, m, t, u in zip(pool.objects(index), mode.tolist(), templates, uncond.tolist()):
            if u or m < config.empty_caption_prob:
                captions.append("")
            else:
                captions.append(caption(obj, t, with_appearance=m >= config.empty_caption_prob + config.shape_only_caption_prob))
        with_image = (torch.rand(b, generator=generator) < config.image_prompt_prob) & ~uncond
        partner = partners.sample(index, config.same_shape_partner_prob, generator)
        tokens = tokenizer(captions, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt").input_ids
        text = model.text_encoder(tokens).last_hidden_state
        image_embeds = model.image_encoder(pixel_values=image_encoder_input(pool.float_images(partner))).image_embeds
        appearance = model.appearance_loss(image_embeds, pool.attributes[partner, 1], pool.attributes[partner, 2])
        image_embeds = image_embeds * with_image.float().unsqueeze(-1)
        noise = torch.randn(latents[index].shape, generator=generator)
        t = torch.randint(scheduler.config.num_train_timesteps, (b,), generator=generator)
        noisy = scheduler.add_noise(latents[index], noise, t)
        cameras = camera_features(pool.elevation_deg[index], pool.azimuth_deg[index])
        pred = model.unet(noisy, t, encoder_hidden_states=text, class_labels=cameras, added_cond_kwargs={"image_embeds": [image_embeds.unsqueeze(1)]}).sample
        loss = F.mse_loss(pred, noise) + config.appearance_loss_weight * appearance
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters()):
                e.lerp_(p, 1 - config.ema_decay)
        return loss.item()

    return run_loop(run_dir, "prior", clock, config.prior_steps, {"model": model, "ema": ema}, optimizer, train_step,
                    lambda step: step_generator(config, "prior", step))


STAGE_FUNCTIONS = {"pool": stage_pool, "vae": stage_vae, "classifier": stage_classifier, "shape_prior": stage_shape_prior, "prior": stage_prior}


STAGE_INPUTS = {"pool": (), "vae": ("pool",), "classifier": ("pool",), "shape_prior": (), "prior": ("pool", "vae")}

StageFunction = Callable[[Path, object, StageClock], bool]


@dataclass(frozen=True)
class StagePlan:
    """A world's stages: their order, what each runs, and which stages each needs done first."""

    order: tuple[str, ...]
    functions: dict[str, StageFunction]
    inputs: dict[str, tuple[str, ...]]


WORLD1_PLAN = StagePlan(STAGES, STAGE_FUNCTIONS, STAGE_INPUTS)


def train(run_dir: Path, config: MiniTrainConfig, max_minutes: float | None = None, stages: tuple[str, ...] = STAGES,
          plan: StagePlan = WORLD1_PLAN) -> bool:
    """Run (or resume) `stages` in the plan's order; True when they are all done.

    A subset can run in a second process beside the first (e.g. the classifier while the prior
    trains), as long as the stages it needs are done and no other process runs the same stage.
    """
    for stage in stages:
        missing = [s for s in plan.inputs[stage] if s not in stages and not done_marker(run_dir, s).is_file()]
        if missing:
            raise UserError(f"stage '{stage}' needs stage '{missing[0]}' first; run it or leave out --stage")
    torch.set_num_threads(config.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + (max_minutes * 60 if max_minutes is not None else float("inf"))
    for stage in [s for s in plan.order if s in stages]:
        if done_marker(run_dir, stage).is_file():
            continue
        clock = StageClock(run_dir, stage, deadline, config.checkpoint_minutes)
        log(f"stage {stage}")
        if not plan.functions[stage](run_dir, config, clock):
            log(f"stopped in stage {stage} (time limit); run again to resume")
            return False
        clock.record()
        write_text_atomic(done_marker(run_dir, stage), "done\n")
    return True
