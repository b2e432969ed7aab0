"""Mini-world attribute accuracy: do renders show what the prompt names and what the visual prompt shows?

Predictions come from the separately trained attribute classifier (never used by the generator).
Against the prompt we score every attribute it names; against the visual prompt we score the
appearance (colour and pattern) the classifier reads off the reference image.
"""

from __future__ import annotations

from torch import Tensor

from tv3dg.priors.mini.captions import parse_caption
from tv3dg.priors.mini.classifier import AttributeClassifier, classify, load_classifier
from tv3dg.priors.mini.world import COLOUR_NAMES, PATTERNS, SHAPES

ATTRIBUTES = ("shape", "colour", "pattern")
APPEARANCE = ("colour", "pattern")


def prompt_attributes(prompt: str) -> dict[str, str]:
    """The attribute names a prompt states, e.g. {'shape': 'cube', 'colour': 'red'}."""
    indices = parse_caption(prompt)
    names = (SHAPES, COLOUR_NAMES, PATTERNS)
    return {attr: table[i] for attr, table, i in zip(ATTRIBUTES, names, indices) if i is not None}


def _rates(predicted: dict[str, list[str]], target: dict[str, str], keys: tuple[str, ...]) -> dict[str, float]:
    views = len(next(iter(predicted.values())))
    rates = {}
    for key in keys:
        if key in target:
            rates[key] = sum(p == target[key] for p in predicted[key]) / views
    scored = [k for k in keys if k in target]
    if scored:
        rates["all"] = sum(all(predicted[k][v] == target[k] for k in scored) for v in range(views)) / views
    return rates


def attribute_report(
    renders: Tensor, prompt: str, visual_prompt: Tensor | None, model: AttributeClassifier | None = None
) -> dict:
    """Per-attribute accuracy of renders [V,3,H,W] against the prompt and the visual prompt [1,3,h,w]."""
    model = model or load_classifier()
    predicted = classify(renders, model)
    target = prompt_attributes(prompt)
    report: dict = {"views": len(renders), "predicted": predicted, "prompt_target": target,
                    "prompt": _rates(predicted, target, ATTRIBUTES)}
    if visual_prompt is not None:
        seen = {k: v[0] for k, v in classify(visual_prompt, model).items()}
        report["visual_prompt_target"] = {k: seen[k] for k in ATTRIBUTES}
        report["visual_prompt"] = _rates(predicted, seen, APPEARANCE)
    return report
