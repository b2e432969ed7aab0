"""`tv3dg mini eval`: every number of the model card, measured against the world's ground truth.

- classifier: held-out accuracy on fresh renders (a seed the training pool never used);
- text: samples of "a {colour} {pattern} {shape}" at random world cameras, judged by the classifier;
- image: text names only a shape, the visual prompt shows a different shape with some colour and
  pattern; the rates at which the sample takes colour / pattern from the image and shape from the text;
- camera: each text sample is compared (pixel MSE) with world renders of the captioned object at
  the requested camera and at 11 others (azimuth +45/90/135 deg, 3 elevations); the requested one
  should be the nearest (chance 1/12; azimuth alone 1/4, elevation alone 1/3). The same check on
  true renders of the object at the requested angles gives the ceiling the check allows;
- shape prior: distance of its points to the true surface and of the surface to its points.
Sampling goes through `DiffusersPrior.sample`, the same code path the 3D pipeline uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tv3dg.priors.config import PriorConfig
from tv3dg.priors.diffusers_prior import DiffusersPrior
from tv3dg.priors.mini.captions import caption
from tv3dg.priors.mini.classifier import AttributeClassifier, load_classifier
from tv3dg.priors.mini.shape_prior import load_shape_prior, surface_points
from tv3dg.priors.mini.world import SHAPES, WORLD_ORBIT, WorldObject, random_cameras, random_objects, render_objects, shape_sdf
from tv3dg.render.cameras import orbit_cameras

EVAL_SEED = 20_261_125  # never used by training
CHECK_ELEVATIONS = (0.0, 25.0, 50.0)
CHECK_AZIMUTH_OFFSETS = (0.0, 45.0, 90.0, 135.0)
CHECK_RADIUS, CHECK_FOV = 3.25, 40.0


@dataclass
class EvalConfig:
    prompts: int = 48  # objects per sampling test
    views: int = 4  # cameras per object
    steps: int = 30
    guidance: float = 7.5
    classifier_images: int = 600


def classifier_accuracy(classifier: AttributeClassifier, count: int, generator: torch.Generator) -> dict[str, float]:
    objects = random_objects(count, generator)
    render = render_objects(objects, random_cameras(count, 32, generator))
    predicted = classifier.classify(render.rgb)
    truth = torch.tensor([[o.shape, o.colour, o.pattern] for o in objects])
    return {name: float((predicted[name] == truth[:, i]).float().mean()) for i, name in enumerate(("shape", "colour", "pattern"))}


def _grid_cameras(generator: torch.Generator, views: int):
    elevation = torch.tensor(CHECK_ELEVATIONS)[torch.randint(len(CHECK_ELEVATIONS), (views,), generator=generator)]
    azimuth = torch.rand(views, generator=generator) * 360 - 180
    return orbit_cameras(elevation, azimuth, CHECK_RADIUS, CHECK_FOV, 32)


def candidate_views(obj: WorldObject, elevation: float, azimuth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """World renders of `obj` at the 12 check cameras around the requested angles, and their
    elevations; the first of every group of len(CHECK_AZIMUTH_OFFSETS) has the requested azimuth."""
    elevs = torch.tensor([e for e in CHECK_ELEVATIONS for _ in CHECK_AZIMUTH_OFFSETS])
    azims = torch.tensor([azimuth + a for _ in CHECK_ELEVATIONS for a in CHECK_AZIMUTH_OFFSETS])
    return render_objects([obj] * len(elevs), orbit_cameras(elevs, azims, CHECK_RADIUS, CHECK_FOV, 32)).rgb, elevs


def camera_matches(image: torch.Tensor, candidates: torch.Tensor, elevations: torch.Tensor, elevation: float) -> tuple[bool, bool, bool]:
    """(camera, azimuth, elevation) of the candidate nearest to `image` equal the requested ones?"""
    best = int(((candidates - image.unsqueeze(0)) ** 2).flatten(1).mean(1).argmin())
    azimuth_ok = best % len(CHECK_AZIMUTH_OFFSETS) == 0
    elevation_ok = float(elevations[best]) == elevation
    return azimuth_ok and elevation_ok, azimuth_ok, elevation_ok


def _uniform(bounds: tuple[float, float], n: int, generator: torch.Generator) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(n, generator=generator)


def text_conditioned(prior: DiffusersPrior, classifier: AttributeClassifier, config: EvalConfig, generator: torch.Generator):
    """Attribute rates of text samples, and the camera check on them and on true renders.

    The true renders (the check's ceiling) show the captioned object at the requested angles but
    at a random training radius and field of view, which the prior is not conditioned on."""
    hits: dict[str, list] = {k: [] for k in ("shape", "colour", "pattern", "camera", "azimuth", "elevation")}
    ceiling: dict[str, list] = {k: [] for k in ("camera", "azimuth", "elevation")}
    sheet = []
    for obj in random_objects(config.prompts, generator):
        cameras = _grid_cameras(generator, config.views)
        samples = prior.sample(caption(obj), cameras=cameras, steps=config.steps, guidance=config.guidance, generator=generator).cpu()
        predicted = classifier.classify(samples)
        for name, truth in zip(("shape", "colour", "pattern"), (obj.shape, obj.colour, obj.pattern)):
            hits[name] += (predicted[name] == truth).tolist()
        n = len(cameras)
        true_cameras = orbit_cameras(
            cameras.elevation_deg, cameras.azimuth_deg, _uniform(WORLD_ORBIT.radius, n, generator), _uniform(WORLD_ORBIT.fov_deg, n, generator), 32
        )
        truths = render_objects([obj] * n, true_cameras).rgb
        for sample, truth, e, a in zip(samples, truths, cameras.elevation_deg.tolist(), cameras.azimuth_deg.tolist()):
            candidates, elevations = candidate_views(obj, e, a)
            for key, ok in zip(("camera", "azimuth", "elevation"), camera_matches(sample, candidates, elevations, e)):
                hits[key].append(ok)
            for key, ok in zip(("camera", "azimuth", "elevation"), camera_matches(truth, candidates, elevations, e)):
                ceiling[key].append(ok)
        if len(sheet) < 8:
            sheet.append(torch.cat([truths, samples]))
    scores = {k: float(np.mean(v)) for k, v in hits.items()}
    scores.update({f"{k}_true_renders": float(np.mean(v)) for k, v in ceiling.items()})
    return scores, sheet


def image_prompted(prior: DiffusersPrior, classifier: AttributeClassifier, config: EvalConfig, generator: torch.Generator):
    hits = {"colour_from_image": [], "pattern_from_image": [], "appearance_from_image": [], "shape_from_text": []}
    sheet = []
    for target in random_objects(config.prompts, generator):
        other = int(torch.randint(len(SHAPES) - 1, (1,), generator=generator))
        prompt_obj = WorldObject((target.shape + 1 + other) % len(SHAPES), target.colour, target.pattern)
        visual_prompt = render_objects([prompt_obj], random_cameras(1, 32, generator)).rgb
        cameras = random_cameras(config.views, 32, generator)
        text = caption(target, with_appearance=False)
        samples = prior.sample(text, visual_prompt=visual_prompt, cameras=cameras, steps=config.steps, guidance=config.guidance, generator=generator).cpu()
        predicted = classifier.classify(samples)
        colour_ok = predicted["colour"] == target.colour
        pattern_ok = predicted["pattern"] == target.pattern
        hits["colour_from_image"] += colour_ok.tolist()
        hits["pattern_from_image"] += pattern_ok.tolist()
        hits["appearance_from_image"] += (colour_ok & pattern_ok).tolist()
        hits["shape_from_text"] += (predicted["shape"] == target.shape).tolist()
        if len(sheet) < 8:
            sheet.append(torch.cat([visual_prompt, samples]))
    return {k: float(np.mean(v)) for k, v in hits.items()}, sheet


def shape_prior_surface_error(generator: torch.Generator) -> dict[str, dict[str, float]]:
    """Per shape: mean |SDF| of the predicted points (on the surface?) and the mean distance from
    true surface samples to the nearest predicted point (is all of it covered?), world units."""
    model = load_shape_prior()
    result = {}
    for index, name in enumerate(SHAPES):
        xyz, _ = model.sample(f"a red {name}", 2000, generator)
        truth = surface_points(index, 2000, generator)
        result[name] = {
            "surface_distance": float(shape_sdf(index, xyz).abs().mean()),
            "coverage_distance": float(torch.cdist(truth, xyz).min(dim=1).values.mean()),
        }
    return result


def save_sheet(rows: list[torch.Tensor], path: Path, scale: int = 3) -> None:
    """Rows of [N, 3, 32, 32] images as one PNG (nearest-neighbour upscaled)."""
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)
    array = (grid.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def evaluate(config: EvalConfig, sheet_dir: Path | None = None) -> dict:
    generator = torch.Generator().manual_seed(EVAL_SEED)
    classifier = load_classifier()
    prior = DiffusersPrior(PriorConfig(model="mini", ip_adapter="mini", device="cpu"))
    text_scores, text_sheet = text_conditioned(prior, classifier, config, generator)
    image_scores, image_sheet = image_prompted(prior, classifier, config, generator)
    metrics = {
        "classifier_heldout_accuracy": classifier_accuracy(classifier, config.classifier_images, generator),
        "text_conditioned": text_scores,
        "image_prompted": image_scores,
        "shape_prior": shape_prior_surface_error(generator),
        "settings": {"prompts": config.prompts, "views": config.views, "steps": config.steps, "guidance": config.guidance, "seed": EVAL_SEED},
    }
    if sheet_dir is not None:
        save_sheet(text_sheet, sheet_dir / "text_samples.png")
        save_sheet(image_sheet, sheet_dir / "image_prompted_samples.png")
    return metrics
