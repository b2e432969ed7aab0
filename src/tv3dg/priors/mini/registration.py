"""Registers the bundled mini prior under the name "mini" (imported by `tv3dg.priors.registry`).

Besides its weights, the mini prior brings what only its procedural world makes possible: a
text-to-point-cloud shape prior for initialisation and an attribute classifier for metrics.
"""

from __future__ import annotations

from torch import Tensor

from tv3dg.priors.config import MINI
from tv3dg.priors.mini.captions import parse_caption, vocabulary
from tv3dg.priors.mini.classifier import classify, load_classifier
from tv3dg.priors.mini.paths import MINI_IMAGE_ENCODER_DIR, MINI_IP_ADAPTER, MINI_MODEL_DIR
from tv3dg.priors.mini.shape_prior import load_shape_prior
from tv3dg.priors.mini.world import COLOUR_NAMES, PATTERNS, SHAPES
from tv3dg.priors.registry import NamedModel, ShapePrior, register


class WorldAttributeReader:
    """Shape, colour and pattern read by the separately trained attribute classifier."""

    attributes = ("shape", "colour", "pattern")
    appearance = ("colour", "pattern")

    def __init__(self) -> None:
        self.model = load_classifier()

    def read_images(self, images: Tensor) -> dict[str, list[str]]:
        return classify(images, self.model)

    def read_prompt(self, prompt: str) -> dict[str, str]:
        names = (SHAPES, COLOUR_NAMES, PATTERNS)
        return {attr: table[i] for attr, table, i in zip(self.attributes, names, parse_caption(prompt)) if i is not None}


def load_world_shape_prior() -> ShapePrior:
    return load_shape_prior().sample


register(
    NamedModel(
        name=MINI,
        model_dir=MINI_MODEL_DIR,
        ip_adapter=MINI_IP_ADAPTER,
        image_encoder_dir=MINI_IMAGE_ENCODER_DIR,
        missing_hint="run `tv3dg mini train`",
        shape_prior=load_world_shape_prior,
        attribute_reader=WorldAttributeReader,
        vocabulary=lambda: frozenset(vocabulary()),
    )
)
