"""Semantic-Geometry Calibration (SGC): pull renders towards reference views of the prompt.

Reference views are K samples of the prompt from the 2D prior at known cameras; the first is
drawn with the visual prompt (so it already carries the wanted appearance) and is then reused as
the image prompt of the others, so the K views agree with each other. At those cameras:
- semantic: 1 - cos between frozen image-encoder features of render and reference (global
  embedding and patch tokens);
- geometry: BCE between the rendered alpha and the reference's foreground mask, plus a
  scale- and shift-invariant (Pearson) depth term against a depth estimator (a transformers
  depth-estimation model, see `calibrate/depth.py`, or a plug-in);
- reward: an optional frozen reward plug-in on the renders (higher is better).
Plug-ins are named "package.module:function"; see `load_plugin`.

Each term is a mean over pixels (or features), while the distillation loss is a sum over the
latent grid of each image; the pipeline multiplies the SGC total by the number of latent
elements per image, so a weight of 1 puts a term on the same footing as the distillation on
every prior (mini: 4x8x8; SD-1.5 at 512 px: 4x64x64). Without it the terms were a few hundred
times weaker than the distillation on the mini prior and could not hold the geometry. The
scale stays the same with `distill.target_space=image` (a sum over pixels instead), so the
mini preset's weights were kept, although there the distillation's gradient on the renders is 3-8x
smaller (norms measured on one mini run).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from tv3dg.calibrate.depth import DepthEstimator, is_plugin
from tv3dg.config import Schedule, schedule_value
from tv3dg.errors import UserError
from tv3dg.priors.base import DiffusionPrior
from tv3dg.render.cameras import Cameras


@dataclass
class SGCConfig:
    """Semantic-Geometry Calibration: reference views of the prompt and the terms that pull renders towards them.

    Each weight is relative to the distillation loss (each term is a mean, scaled by the latent size of one image)."""

    enabled: bool = True
    """Run SGC at all."""
    start_step: int = 100
    """Warm-up: the distillation loss alone before this step."""
    num_views: int = 4
    """K reference views, evenly spaced in azimuth from the front."""
    elevation_deg: float = 15.0
    """Camera elevation of the reference views in degrees."""
    views_per_step: int = 2
    """Reference views rendered and compared at each step (all K are visited in turn)."""
    sample_steps: int = 25
    """DDIM steps of each reference sample."""
    sample_guidance: float = 5.0
    """Classifier-free guidance scale of the reference samples."""
    semantic_weight: Schedule = 0.5
    """Weight of 1 - cos between the image encoder's global embeddings of render and reference."""
    patch_weight: Schedule = 0.5
    """Weight of 1 - cos between the image encoder's patch tokens of render and reference."""
    mask_weight: Schedule = 1.0
    """Weight of the BCE between the rendered alpha and the reference's foreground mask."""
    depth_weight: Schedule = 0.0
    """Weight of the depth term (1 - Pearson correlation of rendered and estimated depth); 0: off."""
    depth_estimator: str | None = None
    """A transformers depth-estimation model (folder or cached id, e.g. Depth Anything) or a plug-in `module:function`, images [B,3,H,W] -> depth [B,1,H,W]."""
    depth_output: Literal["disparity", "depth"] = "disparity"
    """What the depth model predicts (DPT and Depth Anything: disparity, negated before the comparison)."""
    reward: str | None = None
    """Optional reward plug-in `module:function`, images [B,3,H,W] -> reward [B] (higher is better)."""
    reward_weight: Schedule = 0.0
    """Weight of the reward (subtracted from the loss); 0: off."""
    foreground_threshold: float = 0.1
    """Distance from the white background above which a reference pixel counts as object."""
    background_tolerance: float = 0.03
    """Distance from white still counted as background (sampling noise)."""

    def __post_init__(self) -> None:
        check_mask_thresholds(self.foreground_threshold, self.background_tolerance)


def check_mask_thresholds(threshold: float, tolerance: float) -> None:
    """Checked with the config, so a bad value fails before any model is loaded."""
    if not 0.0 <= tolerance < threshold:
        raise UserError(f"sgc.background_tolerance ({tolerance}) must be at least 0 and below sgc.foreground_threshold ({threshold})")


def load_plugin(spec: str) -> Callable[[Tensor], Tensor]:
    """Import `package.module:function`; one-line error when it cannot be found."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"plug-in '{spec}' must be written as package.module:function")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise UserError(f"cannot load plug-in '{spec}' ({err}); check that the module is importable") from None


def foreground_mask(images: Tensor, threshold: float, tolerance: float = 0.0) -> Tensor:
    """Soft mask [B,1,H,W]: 0 up to `tolerance` away from white, 1 from `threshold` away.

    Sampled references have a faint noise floor on their white background; without the
    tolerance it becomes a target alpha of 0.1-0.3 over the whole background, which BCE
    answers with a haze of faint floaters."""
    check_mask_thresholds(threshold, tolerance)
    distance = (1.0 - images).amax(dim=1, keepdim=True)
    return ((distance - tolerance) / (threshold - tolerance)).clamp(0.0, 1.0)


def sample_reference_images(
    prior: DiffusionPrior,
    prompt: str,
    visual_prompt: Tensor | None,
    cameras: Cameras,
    config: SGCConfig,
    generator: torch.Generator,
) -> Tensor:
    """K views of the prompt [K,3,R,R]: the first with the visual prompt, the rest with the first as image prompt."""
    with torch.no_grad():
        first = prior.sample(prompt, visual_prompt, cameras[0], steps=config.sample_steps,
                             guidance=config.sample_guidance, generator=generator)
        images = [first]
        image_prompt = first if prior.has_image_prompt else None
        for k in range(1, len(cameras)):
            images.append(prior.sample(prompt, image_prompt, cameras[k], steps=config.sample_steps,
                                       guidance=config.sample_guidance, generator=generator))
    return torch.cat(images).clamp(0, 1)


class Calibration:
    """The SGC loss against fixed reference views (their features and masks computed once)."""

    def __init__(self, prior: DiffusionPrior, config: SGCConfig, images: Tensor, cameras: Cameras) -> None:
        self.prior = prior
        self.config = config
        self.images = images
        self.cameras = cameras
        self.masks = foreground_mask(images, config.foreground_threshold, config.background_tolerance)
        self.reward = load_plugin(config.reward) if config.reward else None
        with torch.no_grad():
            self.features = prior.image_features(images)
            self.patch_features = prior.image_patch_features(images)
            self.depths = self._estimate_depth(images) if config.depth_estimator else None

    def _estimate_depth(self, images: Tensor) -> Tensor:
        spec = self.config.depth_estimator
        estimate = load_plugin(spec) if is_plugin(spec) else DepthEstimator(spec, self.config.depth_output, images.device)
        return estimate(images)

    def active(self, step: int) -> bool:
        return self.config.enabled and step >= self.config.start_step

    def loss(self, view_index: Tensor, rgb: Tensor, alpha: Tensor, depth: Tensor, step: int) -> tuple[Tensor, dict[str, float]]:
        """SGC loss of renders (rgb [V,3,R,R], alpha and depth [V,1,R,R]) at reference views `view_index`."""
        config = self.config
        mask = self.masks[view_index]
        semantic = 1 - F.cosine_similarity(self.prior.image_features(rgb), self.features[view_index], dim=-1).mean()
        patch = 1 - F.cosine_similarity(
            self.prior.image_patch_features(rgb), self.patch_features[view_index], dim=-1
        ).mean()
        geometry = F.binary_cross_entropy(alpha.clamp(1e-4, 1 - 1e-4), mask)
        total = (
            schedule_value(config.semantic_weight, step) * semantic
            + schedule_value(config.patch_weight, step) * patch
            + schedule_value(config.mask_weight, step) * geometry
        )
        logs = {"sgc_semantic": semantic.item(), "sgc_patch": patch.item(), "sgc_mask": geometry.item()}
        if self.depths is not None:
            surface = depth / alpha.detach().clamp_min(1e-3)  # the rendered depth is sum w_i z_i: per unit alpha
            depth_term = pearson_depth_loss(surface, self.depths[view_index], mask)
            total = total + schedule_value(config.depth_weight, step) * depth_term
            logs["sgc_depth"] = depth_term.item()
        if self.reward is not None:
            reward = self.reward(rgb).mean()
            total = total - schedule_value(config.reward_weight, step) * reward
            logs["sgc_reward"] = reward.item()
        return total, logs


def pearson_depth_loss(depth: Tensor, reference: Tensor, mask: Tensor) -> Tensor:
    """1 - Pearson correlation over foreground pixels: blind to the estimator's scale and shift."""
    losses = []
    for d, r, m in zip(depth, reference, mask):
        keep = m.flatten() > 0.5
        if int(keep.sum()) < 2:
            continue
        a = d.flatten()[keep] - d.flatten()[keep].mean()
        b = r.flatten()[keep] - r.flatten()[keep].mean()
        losses.append(1 - (a * b).sum() / (a.norm() * b.norm() + 1e-8))
    return torch.stack(losses).mean() if losses else depth.sum() * 0
