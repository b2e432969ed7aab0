"""`tv3dg mini eval`: every number of the model card, measured against the world's ground truth.

- classifier: accuracy per attribute on fresh renders (a seed never used in training) from every
  side of the orbit, the eyes counted only on views where they clearly show or clearly do not;
- the eyes on views blurred and mottled as distilled assets are, where a false reading is a false Janus;
- VAE: the share of renders whose reconstruction the classifier reads exactly as the render;
- the eye finder, which reads the Janus rate: how often it sees the eyes on fresh fronts and on
  backs, as rendered and through the VAE;
- text samples: "a [small] [shiny] {colour} {pattern} {shape}" drawn with no view word and with
  the generator's own "..., front view", "..., side view" and "..., back view": the attributes
  read by the classifier, and how often the eye finder sees eyes after each view word;
- image-prompted samples: the text names only a shape, the visual prompt shows another shape;
  how often the sample takes colour and pattern from the image and the shape from the text;
- shape prior: distance of its points to the true surface and of the surface to its points.
Sampling goes through `DiffusersPrior.sample`, the same code path the 3D pipeline uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from PIL import Image

from tv3dg.priors.config import MINI, PriorConfig
from tv3dg.priors.diffusers_prior import DiffusersPrior
from tv3dg.priors.mini.architecture import IMAGE_SIZE
from tv3dg.priors.mini.captions import vocabulary, with_article
from tv3dg.priors.mini.classifier import AttributeClassifier, blur, emblem_labels, load_classifier
from tv3dg.priors.mini.eyes import eyes_seen
from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS, WeightPaths
from tv3dg.priors.mini.shape_prior import load_shape_prior, surface_points
from tv3dg.priors.mini.world import SHAPES, WorldObject, any_cameras, photo_cameras, random_objects, render_objects, shape_sdf
from tv3dg.render.cameras import orbit_cameras

EVAL_SEED = 20261207
ATTRIBUTES = ("shape", "colour", "pattern")
VIEW_WORDS = {"front": 0.0, "side": 90.0, "back": 180.0}
"""View word -> the azimuth of a camera the generator names so (`tv3dg.priors.prompts`)."""
SHEET_ELEVATION, SHEET_RADIUS, SHEET_FOV = 15.0, 3.25, 40.0
SOFTENED_MOTTLE = 0.15


@dataclass
class PriorCheckConfig:
    prompts: int = 48  # objects per sampling check
    steps: int = 30  # DDIM steps
    guidance: float = 7.5


def fresh_views(count: int, size: int = IMAGE_SIZE, seed: int = EVAL_SEED, chunk: int = 256):
    """(images [N,3,H,W], attributes [N,5], eyes' pixels [N]) of random objects from anywhere on the orbit."""
    generator = torch.Generator().manual_seed(seed)
    images, attributes, eyes = [], [], []
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        objects = random_objects(n, generator)
        render = render_objects(objects, any_cameras(n, size, generator))
        images.append(render.rgb)
        attributes.append(torch.tensor([o.as_row() for o in objects]))
        eyes.append(render.emblem_pixels())
    return torch.cat(images), torch.cat(attributes), torch.cat(eyes)


def _readings(model: AttributeClassifier, images: torch.Tensor, chunk: int = 512) -> dict[str, torch.Tensor]:
    parts = [model.classify(images[i : i + chunk]) for i in range(0, len(images), chunk)]
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


def classifier_accuracy(model: AttributeClassifier, count: int = 2000) -> dict[str, float]:
    images, attributes, eyes = fresh_views(count)
    read = _readings(model, images)
    accuracy = {name: float((read[name] == attributes[:, i]).float().mean()) for i, name in enumerate(ATTRIBUTES)}
    label, known = emblem_labels(eyes)
    accuracy["emblem"] = float((read["emblem"][known] == label[known]).float().mean())
    accuracy["emblem_views_scored"] = float(known.float().mean())
    return accuracy


def mottle(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Smooth colour blotches about 8 px across, as an under-converged splat texture has."""
    low = torch.randn(images.shape[0], 3, 8, 8, generator=generator)
    return (images + strength * F.interpolate(low, size=images.shape[-2:], mode="bilinear")).clamp(0, 1)


def softened_eye_reading(model: AttributeClassifier, count: int = 1000) -> dict[str, float]:
    """How the eyes read on views blurred (3x3) and mottled (0.15) as distilled assets are: the
    Janus rate is a count of eyes read on back views, so a false reading there is a false Janus."""
    images, _, eyes = fresh_views(count, seed=EVAL_SEED + 2)
    generator = torch.Generator().manual_seed(EVAL_SEED + 2)
    seen = _readings(model, mottle(blur(images), SOFTENED_MOTTLE, generator))["emblem"] == 1
    label, known = emblem_labels(eyes)
    return {"read_visible_when_hidden": float(seen[known & (label == 0)].float().mean()),
            "read_visible_when_visible": float(seen[known & (label == 1)].float().mean())}


@torch.no_grad()
def reconstructed(vae: AutoencoderKL, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    return torch.cat([((vae.decode(vae.encode(images[i : i + chunk] * 2 - 1).latent_dist.mean).sample + 1) / 2).clamp(0, 1)
                      for i in range(0, len(images), chunk)])


def eye_finder_reading(vae: AutoencoderKL, count: int = 500) -> dict[str, float]:
    """Share of views where the eye finder sees eyes: fresh objects from the front (within 30 deg,
    at photo elevations) and from behind (beyond 135 deg), as rendered and through the VAE."""
    generator = torch.Generator().manual_seed(EVAL_SEED + 3)
    objects = random_objects(count, generator)
    elevation = torch.rand(count, generator=generator) * 30
    azimuths = {"fronts": torch.rand(count, generator=generator) * 60 - 30,
                "backs": 180 + torch.rand(count, generator=generator) * 90 - 45}
    result = {}
    for side, azimuth in azimuths.items():
        images = render_objects(objects, orbit_cameras(elevation, azimuth, SHEET_RADIUS, SHEET_FOV, IMAGE_SIZE)).rgb
        result[f"{side}_read"] = float(eyes_seen(images).float().mean())
        result[f"{side}_read_after_vae"] = float(eyes_seen(reconstructed(vae, images)).float().mean())
    return result


@torch.no_grad()
def reconstruction_agreement(vae: AutoencoderKL, model: AttributeClassifier, count: int = 1000) -> dict[str, float]:
    """Share of renders whose VAE reconstruction the classifier reads as it reads the render."""
    images, _, eyes = fresh_views(count, seed=EVAL_SEED + 1)
    recon = reconstructed(vae, images)
    direct, through = _readings(model, images), _readings(model, recon)
    same = {name: direct[name] == through[name] for name in direct}
    _, clear = emblem_labels(eyes)  # as in classifier_accuracy: grazing eyes are neither seen nor hidden
    same["emblem"] = same["emblem"] | ~clear
    agreement = {name: float(same[name].float().mean()) for name in ATTRIBUTES}
    agreement["emblem"] = float(same["emblem"][clear].float().mean())
    agreement["all"] = float(torch.stack(list(same.values())).all(dim=0).float().mean())
    agreement["pixel_mse"] = float(((recon - images) ** 2).mean())
    return agreement


def object_prompt(obj: WorldObject, with_appearance: bool = True) -> str:
    """'a [small] [shiny] {colour} {pattern} {shape}' (without appearance: 'a [small] {shape}')."""
    shape, colour, pattern, material, size = obj.names
    words = ["small"] if size == "small" else []
    if with_appearance:
        words += (["shiny"] if material == "shiny" else []) + [colour, pattern]
    return " ".join(with_article([*words, shape]))


def _front_render(obj: WorldObject) -> torch.Tensor:
    return render_objects([obj], orbit_cameras(SHEET_ELEVATION, 0.0, SHEET_RADIUS, SHEET_FOV, IMAGE_SIZE)).rgb


def text_samples(prior: DiffusersPrior, classifier: AttributeClassifier, config: PriorCheckConfig, generator: torch.Generator):
    """Attribute rates over every sample, and the eyes' rate after each view word (and none)."""
    hits: dict[str, list[bool]] = {name: [] for name in (*ATTRIBUTES, "all")}
    eyes: dict[str, list[bool]] = {"no_view_word": [], **{word: [] for word in VIEW_WORDS}}
    named_views = orbit_cameras(SHEET_ELEVATION, torch.tensor(list(VIEW_WORDS.values())), SHEET_RADIUS, SHEET_FOV, IMAGE_SIZE)
    sheet = []
    for obj in random_objects(config.prompts, generator):
        text = object_prompt(obj)
        samples = torch.cat([
            prior.sample(text, steps=config.steps, guidance=config.guidance, generator=generator).cpu(),
            prior.sample(text, cameras=named_views, steps=config.steps, guidance=config.guidance, generator=generator).cpu(),
        ])
        read = classifier.classify(samples)
        right = [read[name] == truth for name, truth in zip(ATTRIBUTES, obj.as_row())]
        for name, ok in zip(ATTRIBUTES, right):
            hits[name] += ok.tolist()
        hits["all"] += torch.stack(right).all(dim=0).tolist()
        for key, seen in zip(eyes, eyes_seen(samples).tolist()):
            eyes[key].append(seen)
        if len(sheet) < 8:
            sheet.append(torch.cat([_front_render(obj), samples]))
    scores: dict = {name: float(np.mean(v)) for name, v in hits.items()}
    scores["eyes_visible"] = {key: float(np.mean(v)) for key, v in eyes.items()}
    return scores, sheet


def image_prompted(prior: DiffusersPrior, classifier: AttributeClassifier, config: PriorCheckConfig, generator: torch.Generator):
    """The text names a shape; the visual prompt shows another shape in the wanted colour and pattern."""
    hits: dict[str, list[bool]] = {"colour_from_image": [], "pattern_from_image": [], "appearance_from_image": [], "shape_from_text": []}
    sheet = []
    for target in random_objects(config.prompts, generator):
        other = int(torch.randint(len(SHAPES) - 1, (1,), generator=generator))
        shown = WorldObject((target.shape + 1 + other) % len(SHAPES), *target.as_row()[1:])
        visual_prompt = render_objects([shown], photo_cameras(1, IMAGE_SIZE, generator)).rgb
        sample = prior.sample(object_prompt(target, with_appearance=False), visual_prompt=visual_prompt, steps=config.steps,
                              guidance=config.guidance, generator=generator).cpu()
        read = classifier.classify(sample)
        colour_ok, pattern_ok = bool(read["colour"] == target.colour), bool(read["pattern"] == target.pattern)
        hits["colour_from_image"].append(colour_ok)
        hits["pattern_from_image"].append(pattern_ok)
        hits["appearance_from_image"].append(colour_ok and pattern_ok)
        hits["shape_from_text"].append(bool(read["shape"] == target.shape))
        if len(sheet) < 8:
            sheet.append(torch.cat([visual_prompt, sample]))
    return {k: float(np.mean(v)) for k, v in hits.items()}, sheet


def shape_prior_surface_error(generator: torch.Generator, path: Path = PACKAGE_WEIGHTS.shape_prior) -> dict[str, dict[str, float]]:
    """Per shape: mean |SDF| of the predicted points (on the surface?) and the mean distance from
    true surface samples to the nearest predicted point (is all of it covered?), world units."""
    model = load_shape_prior(path)
    result = {}
    for index, name in enumerate(SHAPES):
        xyz, _ = model.sample(f"a red {name}", 2000, generator)
        truth = surface_points(index, 2000, generator)
        result[name] = {
            "surface_distance": float(shape_sdf(index, xyz).abs().mean()),
            "coverage_distance": float(torch.cdist(truth, xyz).min(dim=1).values.mean()),
        }
    return result


def save_sheet(rows: list[torch.Tensor], path: Path, scale: int = 2) -> None:
    """Rows of [N, 3, H, W] images as one PNG (nearest-neighbour upscaled)."""
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)
    array = (grid.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def mini_prior(paths: WeightPaths = PACKAGE_WEIGHTS) -> DiffusersPrior:
    """The prior under `paths` on the CPU: the registered mini model for the package's weights, else
    the folder, read in the mini vocabulary all the same: without it a folder's prior would get
    "..., back view" with a comma it never saw in training (the registered model drops it)."""
    if paths == PACKAGE_WEIGHTS:
        return DiffusersPrior(PriorConfig(model=MINI, ip_adapter=MINI, device="cpu"))
    prior = DiffusersPrior(PriorConfig(model=str(paths.model), ip_adapter=str(paths.ip_adapter), device="cpu"))
    prior.vocabulary = frozenset(vocabulary())
    return prior


def evaluate(config: PriorCheckConfig, sheet_dir: Path | None = None, paths: WeightPaths = PACKAGE_WEIGHTS) -> dict:
    """Every check of the model card on the weights under `paths` (the package's by default, or a
    `tv3dg mini train weights_dir=` trial's)."""
    classifier = load_classifier(paths.classifier)
    vae = AutoencoderKL.from_pretrained(paths.vae, torch_dtype=torch.float32).eval()
    generator = torch.Generator().manual_seed(EVAL_SEED)
    prior = mini_prior(paths)
    text_scores, text_sheet = text_samples(prior, classifier, config, generator)
    image_scores, image_sheet = image_prompted(prior, classifier, config, generator)
    metrics = {
        "classifier_accuracy": classifier_accuracy(classifier),
        "classifier_on_softened_views": softened_eye_reading(classifier),
        "vae_agreement": reconstruction_agreement(vae, classifier),
        "eye_finder": eye_finder_reading(vae),
        "text_conditioned": text_scores,
        "image_prompted": image_scores,
        "shape_prior": shape_prior_surface_error(generator, paths.shape_prior),
        "settings": {"prompts": config.prompts, "steps": config.steps, "guidance": config.guidance, "seed": EVAL_SEED},
    }
    if sheet_dir is not None:
        save_sheet(text_sheet, sheet_dir / "text_samples.png")
        save_sheet(image_sheet, sheet_dir / "image_prompted_samples.png")
    return metrics
