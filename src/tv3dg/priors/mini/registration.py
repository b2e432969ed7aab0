"""Registers the bundled mini prior under the name "mini" (imported by `tv3dg.priors.registry`).

Besides its weights, the mini prior brings what only its procedural world makes possible: a
text-to-point-cloud shape prior for initialisation, an attribute classifier for metrics (the
eyes it reads count multi-faced assets) and true renders of the prompt's object (oversaturation).
"""

from __future__ import annotations

from torch import Tensor

from tv3dg.priors.config import MINI
from tv3dg.priors.mini.captions import parse_caption, vocabulary
from tv3dg.priors.mini.classifier import ATTRIBUTE_NAMES, EMBLEM, classify, load_classifier
from tv3dg.priors.mini.eyes import eyes_seen
from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS
from tv3dg.priors.mini.shape_prior import load_shape_prior
from tv3dg.priors.mini.world import WorldObject, render_objects
from tv3dg.priors.registry import NamedModel, ShapePrior, register
from tv3dg.render.cameras import Cameras


class WorldAttributeReader:
    """Shape, colour and pattern read by the separately trained classifier; whether the eyes show,
    by their structure (`tv3dg.priors.mini.eyes`), which unlike the classifier reads no eyes into
    the texture of distilled assets.

    The eyes are a reading only, never a target: a prompt names the object, not the side seen.
    """

    attributes = ("shape", "colour", "pattern")
    appearance = ("colour", "pattern")

    def __init__(self) -> None:
        self.model = load_classifier()

    def read_images(self, images: Tensor) -> dict[str, list[str]]:
        read = classify(images, self.model)
        read["emblem"] = [EMBLEM[int(seen)] for seen in eyes_seen(images).tolist()]
        return read

    def read_prompt(self, prompt: str) -> dict[str, str]:
        parsed = parse_caption(prompt)
        named = (parsed.shape, parsed.colour, parsed.pattern)
        return {attr: ATTRIBUTE_NAMES[attr][i] for attr, i in zip(self.attributes, named) if i is not None}


def true_views(prompt: str, cameras: Cameras) -> tuple[Tensor, Tensor] | None:
    """(rgb, alpha) of the object `prompt` names, seen from `cameras`; None unless it names
    shape, colour and pattern (then the world holds exactly one such object, matte or shiny)."""
    parsed = parse_caption(prompt)
    if None in (parsed.shape, parsed.colour, parsed.pattern):
        return None
    obj = WorldObject(parsed.shape, parsed.colour, parsed.pattern, parsed.material or 0, parsed.size or 0)
    render = render_objects([obj] * len(cameras), cameras)
    return render.rgb, render.alpha


def load_world_shape_prior() -> ShapePrior:
    return load_shape_prior().sample


register(
    NamedModel(
        name=MINI,
        model_dir=PACKAGE_WEIGHTS.model,
        ip_adapter=PACKAGE_WEIGHTS.ip_adapter,
        image_encoder_dir=PACKAGE_WEIGHTS.image_encoder,
        missing_hint="run `tv3dg mini train`",
        shape_prior=load_world_shape_prior,
        attribute_reader=WorldAttributeReader,
        vocabulary=lambda: frozenset(vocabulary()),
        true_views=true_views,
    )
)
