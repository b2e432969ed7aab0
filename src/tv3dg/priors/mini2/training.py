"""Training of world 2's mini prior, stage by stage, resumable (`tv3dg mini train --world 2`).

Stages: `pool` (photo-like renders the prior and VAE learn from), `view_pool` (renders from
every side, for the classifier), `vae`, `classifier`, `shape_prior`, then `prior`. Each stage is
a pure function of the seed and its settings; a finished stage's weights are exported into the
package, so the next stage can run in a later session from a fresh clone (the pools, a few
hundred MB, are rendered again there: same seed, same images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tv3dg.priors.mini.lr import cosine_lr
from tv3dg.priors.mini.training import StageClock, StagePlan, log, run_loop
from tv3dg.priors.mini2.architecture import IMAGE_SIZE, build_vae
from tv3dg.priors.mini2.classifier import AttributeClassifier, augment, classifier_loss
from tv3dg.priors.mini2.data import load_pool, render_pool, save_pool
from tv3dg.priors.mini2.export import export_classifier, export_shape_prior, export_vae
from tv3dg.priors.mini.shape_prior import ShapePriorSchedule, shape_prior_train_step
from tv3dg.priors.mini2.shape_prior import ShapePrior, body_albedo, shape_surfaces
from tv3dg.priors.mini2.world import any_cameras, photo_cameras

STAGES = ("pool", "view_pool", "vae", "classifier", "shape_prior", "prior")


@dataclass
class Mini2TrainConfig:
    """Every number that decides world 2's shipped weights (strict keys via `tv3dg.config.from_dict`)."""

    seed: int = 0
    pool_size: int = 32768
    view_pool_size: int = 16384
    vae_steps: int = 1600
    vae_batch: int = 32
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-5
    classifier_steps: int = 2000
    classifier_batch: int = 64
    classifier_lr: float = 2e-3
    shape_prior_steps: int = 1500
    shape_prior_batch: int = 16
    shape_prior_lr: float = 1e-3
    shape_prior_unknown_prob: float = 0.15
    checkpoint_minutes: float = 3.0
    threads: int = 1  # on a shared 2-core machine one thread per process is far faster than two


def step_generator(config: Mini2TrainConfig, stage: str, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(config.seed * 1_000_003 + STAGES.index(stage) * 10_000_019 + step)


def _render(run_dir: Path, name: str, count: int, seed: int, cameras) -> bool:
    def progress(done: int) -> None:
        if done % 4096 == 0 or done == count:
            log(f"{name}: {done}/{count} rendered")

    save_pool(render_pool(count, IMAGE_SIZE, seed, cameras, progress=progress), run_dir / f"{name}.safetensors")
    return True


def stage_pool(run_dir: Path, config: Mini2TrainConfig, clock: StageClock) -> bool:
    return _render(run_dir, "pool", config.pool_size, config.seed, photo_cameras)


def stage_view_pool(run_dir: Path, config: Mini2TrainConfig, clock: StageClock) -> bool:
    return _render(run_dir, "view_pool", config.view_pool_size, config.seed + 7919, any_cameras)


def stage_vae(run_dir: Path, config: Mini2TrainConfig, clock: StageClock) -> bool:
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
        loss = F.mse_loss(vae.decode(z).sample, x) + config.vae_kl_weight * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    if not run_loop(run_dir, "vae", clock, config.vae_steps, {"vae": vae}, optimizer, train_step,
                    lambda step: step_generator(config, "vae", step)):
        return False
    export_vae(vae.eval(), pool)
    return True


def stage_classifier(run_dir: Path, config: Mini2TrainConfig, clock: StageClock) -> bool:
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
    export_classifier(model.eval())
    return True


def stage_shape_prior(run_dir: Path, config: Mini2TrainConfig, clock: StageClock) -> bool:
    torch.manual_seed(config.seed + 2)
    surfaces = shape_surfaces(2048, torch.Generator().manual_seed(config.seed + 2))
    model = ShapePrior()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.shape_prior_lr)
    schedule = ShapePriorSchedule(config.shape_prior_steps, config.shape_prior_lr, config.shape_prior_batch, config.shape_prior_unknown_prob)
    train_step = shape_prior_train_step(model, optimizer, schedule, surfaces, body_albedo)
    if not run_loop(run_dir, "shape_prior", clock, config.shape_prior_steps, {"shape_prior": model}, optimizer, train_step,
                    lambda step: step_generator(config, "shape_prior", step)):
        return False
    export_shape_prior(model.eval())
    return True


WORLD2_PLAN = StagePlan(
    order=STAGES[:-1],
    functions={"pool": stage_pool, "view_pool": stage_view_pool, "vae": stage_vae, "classifier": stage_classifier,
               "shape_prior": stage_shape_prior},
    inputs={"pool": (), "view_pool": (), "vae": ("pool",), "classifier": ("view_pool",), "shape_prior": ()},
)
