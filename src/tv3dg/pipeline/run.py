"""The TV-3DG loop: render a batch of views, VPCSM (or another loss) through the VAE encoder, SGC
after its warm-up, Adam step, densify/prune; checkpoints, Ctrl-C and NaN handling; outputs.

It wires the pieces and contains none of them: cameras, rasterizer, prior, losses, calibration,
densification, checkpoints and exporters live in their own modules.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor
from tqdm import tqdm

from tv3dg.calibrate.depth import check_depth_estimator
from tv3dg.calibrate.sgc import Calibration, sample_reference_images
from tv3dg.console import quiet_third_party
from tv3dg.atomic import write_text_atomic
from tv3dg.config import dump_yaml, schedule_value
from tv3dg.distill.losses import compute_distillation, encode_renders, render_loss
from tv3dg.errors import UserError
from tv3dg.eval.attributes import attribute_report
from tv3dg.eval.colour import read_colour
from tv3dg.eval.janus import read_janus
from tv3dg.gaussians.densify import DensifyStrategy
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.optim import build_optimizer, update_learning_rates
from tv3dg.init.initializers import check_initializer, initial_gaussians
from tv3dg.pipeline.checkpoint import CHECKPOINT_NAME, Checkpoint, RunState, load_checkpoint, save_checkpoint
from tv3dg.pipeline.config import CameraConfig, GenerateConfig
from tv3dg.pipeline.interrupt import StopRequest
from tv3dg.pipeline.outputs import render_view_output, view_cameras, write_outputs
from tv3dg.priors.base import DiffusionPrior
from tv3dg.priors.diffusers_prior import DiffusersPrior
from tv3dg.priors.images import read_image, to_image_batch
from tv3dg.priors.registry import NamedModel, named_model
from tv3dg.priors.weight_checks import check_prior_weights
from tv3dg.render.cameras import Cameras, OrbitRanges, concat_cameras, orbit_cameras, sample_orbit_cameras, turntable_azimuths, turntable_cameras
from tv3dg.render.rasterizer import RenderOutput, rasterize

StepCallback = Callable[[int, dict[str, float], Gaussians], None]
"""Called after each step with the step count, its logs and the live Gaussians (read them, e.g. for a
preview render under `torch.no_grad()`; never modify them)."""
WHITE = torch.ones(3)
HISTORY_WINDOW = 50  # metrics.json reports each loss as the mean over the last steps


@dataclass
class GenerationResult:
    out_dir: Path
    metrics: dict
    interrupted: bool


def training_cameras(config: CameraConfig, step: int, generator: torch.Generator, device: torch.device) -> Cameras:
    """A batch of orbit cameras drawn from the ranges the schedules give at `step`."""
    span = schedule_value(config.azimuth_span_deg, step)
    ranges = OrbitRanges(
        elevation_deg=tuple(schedule_value(v, step) for v in config.elevation_deg),
        azimuth_deg=(-span / 2, span / 2),
        radius=tuple(schedule_value(v, step) for v in config.radius),
        fov_deg=tuple(schedule_value(v, step) for v in config.fov_deg),
    )
    return sample_orbit_cameras(config.views_per_step, ranges, config.resolution, generator=generator, device=device)


def background_color(kind: str, generator: torch.Generator) -> Tensor:
    if kind == "random":
        return torch.rand(3, generator=generator)
    return WHITE.clone() if kind == "white" else torch.zeros(3)


def image_background(config: GenerateConfig) -> tuple[float, float, float]:
    """What an image's transparent pixels become: the renders' background (white when it is random,
    like the SGC references and the exported views)."""
    return (0.0, 0.0, 0.0) if config.camera.background == "black" else (1.0, 1.0, 1.0)


def func_switch_prompt(prior: DiffusionPrior, config: GenerateConfig, generator: torch.Generator) -> Tensor:
    """With no image, a text-to-image sample of the prompt becomes the visual prompt."""
    vp = config.visual_prompt
    camera = orbit_cameras(vp.elevation_deg, vp.azimuth_deg, config.export.radius, config.export.fov_deg,
                           prior.resolution, device=prior.device)
    return prior.sample(config.prompt, None, camera, steps=vp.sample_steps, guidance=vp.guidance, generator=generator).cpu()


def peak_memory_mb() -> dict[str, float]:
    peak = {"cpu_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        peak["cuda_allocated"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


class Generation:
    """One run's live state; `run()` goes from the current step to `config.steps`."""

    def __init__(
        self, config: GenerateConfig, out_dir: Path, resume: bool, progress: bool = True, overwrite: bool = False
    ) -> None:
        self.config = config
        self.out_dir = out_dir
        self.progress = progress
        if not resume and not overwrite and (out_dir / CHECKPOINT_NAME).exists():
            raise UserError(f"'{out_dir}' already holds a run; pass --resume {out_dir}, --overwrite, or another --out")
        # Validate the image before loading the (possibly large) prior.
        image = to_image_batch(read_image(config.image, image_background(config))) if config.image and not resume else None
        check_prior_weights(config.prior)  # configs and headers: a wrong adapter fails in seconds, not after loading
        if not resume:
            check_initializer(config.init, config.prior.model)
            if config.sgc.enabled:
                check_depth_estimator(config.sgc.depth_estimator)
        self.prior = DiffusersPrior(config.prior)
        self.dropped_words = self.prior.report_dropped_words(config.prompt)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.densify = DensifyStrategy(config.gaussians.densify, self.generator)
        if resume:
            self._resume()
        else:
            self._start(image)
        self.calibration = self._calibration()

    # ----- set-up ---------------------------------------------------------------------------
    def _start(self, image: Tensor | None) -> None:
        config = self.config
        if image is not None:
            if not self.prior.has_image_prompt:
                raise UserError("--image needs an IP-Adapter; set prior.ip_adapter (e.g. --ip-adapter ip-adapter_sd15.safetensors)")
            self.visual_prompt = image
            self.visual_source = str(config.image)
        elif self.prior.has_image_prompt:
            self.visual_prompt = func_switch_prompt(self.prior, config, self.generator)
            self.visual_source = "func_switch"
        else:
            self.visual_prompt, self.visual_source = None, "none"
        texture_image = self.visual_prompt if config.prior.ip_mode == "texture" else None
        self.gaussians = initial_gaussians(config.init, config.prompt, config.gaussians.sh_degree, self.generator,
                                           self.prior.device, texture_image)
        self.gaussians.to(self.prior.device)
        self.optimizer = build_optimizer(self.gaussians, config.gaussians.optim)
        self.state = RunState()
        self.reference_images = None
        if config.sgc.enabled:
            cameras = self._reference_cameras()
            self.reference_images = sample_reference_images(
                self.prior, config.prompt, self.visual_prompt, cameras, config.sgc, self.generator
            )
        self.state.setup_unet_calls, self.state.setup_unet_rows = self.prior.counter.calls, self.prior.counter.rows

    def _resume(self) -> None:
        checkpoint = load_checkpoint(self.out_dir, self.config.gaussians.optim, self.densify)
        self.gaussians = checkpoint.gaussians.to(self.prior.device)
        self.optimizer = checkpoint.optimizer
        self.generator.set_state(checkpoint.generator_state)
        self.state = checkpoint.state
        self.visual_prompt = checkpoint.extras.get("visual_prompt")
        self.visual_source = self.config.image or ("func_switch" if self.visual_prompt is not None else "none")
        self.reference_images = checkpoint.extras.get("reference_images")
        self.prior.counter.calls, self.prior.counter.rows = self.state.unet_calls, self.state.unet_rows

    def _reference_cameras(self) -> Cameras:
        """SGC's K reference views: evenly spaced around the object from the front, at the export framing."""
        sgc, export = self.config.sgc, self.config.export
        return turntable_cameras(sgc.num_views, sgc.elevation_deg, export.radius, export.fov_deg, self.prior.resolution,
                                 device=self.prior.device)

    def _calibration(self) -> Calibration | None:
        if self.reference_images is None:
            return None
        return Calibration(self.prior, self.config.sgc, self.reference_images.to(self.prior.device), self._reference_cameras())

    # ----- the loop -------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        config = self.config
        update_learning_rates(self.optimizer, config.gaussians.optim, step)
        cameras = training_cameras(config.camera, step, self.generator, self.prior.device)
        background = background_color(config.camera.background, self.generator).to(self.prior.device)
        views = None
        if self.calibration is not None and self.calibration.active(step):
            views = torch.randperm(config.sgc.num_views, generator=self.generator)[: config.sgc.views_per_step]
        render, reference = self._render(cameras, background, views)
        images = render.rgb[: len(cameras)].permute(0, 3, 1, 2)
        latents = encode_renders(self.prior, images, config.distill.target_space)
        conditions = self.prior.prepare_conditions(config.prompt, self.visual_prompt, cameras)
        grad, logs = compute_distillation(self.prior, latents, conditions, step, config.distill, self.generator)
        loss = schedule_value(config.loss_weight, step) * render_loss(
            self.prior, images, latents, grad, config.distill.target_space
        )
        logs["distill"] = float(loss.detach())
        if reference is not None:
            sgc, sgc_logs = self.calibration.loss(
                views, reference.rgb.permute(0, 3, 1, 2), reference.alpha.permute(0, 3, 1, 2),
                reference.depth.permute(0, 3, 1, 2), step,
            )
            loss = loss + sgc * latents[0].numel()  # means -> the distillation's per-image latent sum (see calibrate/sgc.py)
            logs.update(sgc_logs)
        loss.backward()
        logs["loss"] = float(loss.detach())
        if not self._gradients_finite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            self.state.nonfinite_steps += 1
            if self.state.nonfinite_steps > config.max_nonfinite_steps:
                raise UserError(
                    f"{self.state.nonfinite_steps} steps gave NaN/Inf gradients; lower the learning rates or guidance "
                    "(the last good asset is kept)"
                )
            return logs
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._bound_scales()
        report = self.densify.step_post_backward(self.gaussians, self.optimizer, render.screen_stats(slice(0, len(cameras))), step)
        self.state.count(report.counts())
        interval = config.gaussians.sh_degree_interval
        if interval > 0 and (step + 1) % interval == 0:
            self.gaussians.increase_sh_degree()
        logs["num_gaussians"] = float(report.num_points)
        return logs

    def _render(
        self, cameras: Cameras, background: Tensor, views: Tensor | None
    ) -> tuple[RenderOutput, RenderOutput | None]:
        """The training views (first in the returned render) and, with SGC `views`, the reference views.

        Both go through one rasterizer call when their image sizes agree: on small images the
        per-call work (projection, binning, the compositing loop's steps) costs as much as the pixels.
        """
        if views is None:
            return rasterize(self.gaussians, cameras, background), None
        assert self.calibration is not None
        white = WHITE.to(self.prior.device)
        references = self.calibration.cameras[views.to(self.prior.device)]
        if (references.width, references.height) != (cameras.width, cameras.height):
            return rasterize(self.gaussians, cameras, background), rasterize(self.gaussians, references, white)
        backgrounds = torch.cat([background.expand(len(cameras), 3), white.expand(len(references), 3)])
        both = rasterize(self.gaussians, concat_cameras(cameras, references), backgrounds)
        return both, both.views(slice(len(cameras), None))

    def _bound_scales(self) -> None:
        """Project the scales back into [min_scale, max_scale] after the optimiser step."""
        low, high = self.config.gaussians.min_scale, self.config.gaussians.max_scale
        if low <= 0 and high <= 0:  # no bounds (torch.clamp refuses two None bounds)
            return
        with torch.no_grad():
            self.gaussians.log_scales.clamp_(
                min=math.log(low) if low > 0 else None, max=math.log(high) if high > 0 else None
            )

    def _gradients_finite(self, loss: Tensor) -> bool:
        if not bool(torch.isfinite(loss)):
            return False
        return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in self.gaussians.parameters())

    def run(self, on_step: StepCallback | None = None, stop: StopRequest | None = None) -> GenerationResult:
        config = self.config
        interrupted = False
        started = time.perf_counter() - self.state.elapsed_s
        write_text_atomic(self.out_dir / "config.yaml", dump_yaml(config))
        bar = tqdm(total=config.steps, initial=self.state.step, desc="generate", unit="step", disable=not self.progress)
        with stop or StopRequest() as stop, bar:
            while self.state.step < config.steps:
                logs = self.train_step(self.state.step)
                self.state.log(logs)
                self.state.step += 1
                self.state.elapsed_s = time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(loss=f"{logs['loss']:.4g}", n=int(self.gaussians.num_points))
                if on_step is not None:
                    on_step(self.state.step, logs, self.gaussians)
                if stop.requested:
                    interrupted = True
                    break
                if self.state.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
        self.save_checkpoint()
        metrics = write_outputs(self.out_dir, self.gaussians, config, self.visual_prompt,
                                self.metrics(interrupted), WHITE, progress=self.progress)
        return GenerationResult(self.out_dir, metrics, interrupted)

    def save_checkpoint(self) -> None:
        self.state.unet_calls, self.state.unet_rows = self.prior.counter.calls, self.prior.counter.rows
        extras = {}
        if self.visual_prompt is not None:
            extras["visual_prompt"] = self.visual_prompt
        if self.reference_images is not None:
            extras["reference_images"] = self.reference_images
        save_checkpoint(self.out_dir, Checkpoint(self.gaussians, self.optimizer, self.densify,
                                                 self.generator.get_state(), extras, self.state))

    # ----- metrics --------------------------------------------------------------------------
    def unet_costs(self) -> dict[str, float]:
        """UNet calls and rows in total, in set-up sampling, and per loop step (set-up excluded)."""
        state, counter = self.state, self.prior.counter
        steps = max(state.step, 1)
        return {
            "calls": counter.calls, "rows": counter.rows,
            "setup_calls": state.setup_unet_calls, "setup_rows": state.setup_unet_rows,
            "calls_per_step": (counter.calls - state.setup_unet_calls) / steps,
            "rows_per_step": (counter.rows - state.setup_unet_rows) / steps,
        }

    def world_measures(self, named: NamedModel) -> dict:
        """The measures only a prior with a world's ground truth allows: the attributes its
        classifier reads off the views, fronts seen from behind (Janus) and oversaturation."""
        if named.attribute_reader is None and named.true_views is None:
            return {}
        renders, alpha = render_view_output(self.gaussians.detached_copy("cpu"), self.config.export, self.prior.resolution, WHITE)
        measures: dict = {}
        if named.attribute_reader is not None:
            report = attribute_report(renders, self.config.prompt, self.visual_prompt, named.attribute_reader())
            measures["attributes"] = report
            if "emblem" in report["predicted"]:  # a world whose objects have a front: count fronts seen from behind
                seen = [reading == "visible" for reading in report["predicted"]["emblem"]]
                measures["janus"] = read_janus(seen, turntable_azimuths(len(seen))).as_dict()
        if named.true_views is not None:
            truth = named.true_views(self.config.prompt, view_cameras(self.config.export, self.prior.resolution))
            if truth is not None:
                measures["colour"] = read_colour(renders, alpha, *truth).as_dict()
        return measures

    def metrics(self, interrupted: bool) -> dict:
        state = self.state
        steps = max(state.step, 1)
        metrics = {
            "prompt": self.config.prompt,
            "prompt_read_as": self.prior.known_words(self.config.prompt)[0],
            "dropped_words": self.dropped_words,  # outside a closed vocabulary (the mini prior's): not read
            "visual_prompt": self.visual_source,
            "steps": state.step,
            "interrupted": interrupted,
            "losses": {k: sum(v[-HISTORY_WINDOW:]) / len(v[-HISTORY_WINDOW:]) for k, v in state.history.items() if v},
            "unet": self.unet_costs(),
            "time_s": state.elapsed_s,
            "seconds_per_step": state.elapsed_s / steps,
            "peak_memory_mb": peak_memory_mb(),
            "num_gaussians": self.gaussians.num_points,
            "nonfinite_steps": state.nonfinite_steps,
            "densify": dict(state.densify),
        }
        named = named_model(self.config.prior.model)
        if named is not None:
            metrics.update(self.world_measures(named))
        return metrics


def generate(
    config: GenerateConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
    on_step: StepCallback | None = None, overwrite: bool = False, stop: StopRequest | None = None,
) -> GenerationResult:
    """Run (or resume) a generation into `out_dir`; see `GenerateConfig` for every option.

    A folder that already holds a run is refused unless `resume` (continue it) or `overwrite`.
    `stop.request()` (from any thread) ends the run at the next step boundary, as Ctrl-C does,
    and every output is still written. Third-party loading notices stay off the terminal unless
    `TV3DG_VERBOSE=1` (`tv3dg.console`).
    """
    quiet_third_party()
    return Generation(config, Path(out_dir), resume, progress, overwrite).run(on_step, stop)
