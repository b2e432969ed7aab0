"""Attribute accuracy: do renders show what the prompt names and what the visual prompt shows?

The attributes are read by an `AttributeReader` that a named model provides (the mini prior's
is a separately trained classifier, never used by the generator). Against the prompt we score
every attribute it names; against the visual prompt the appearance read off the reference image.
"""

from __future__ import annotations

from torch import Tensor

from tv3dg.priors.registry import AttributeReader


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


def attribute_report(renders: Tensor, prompt: str, visual_prompt: Tensor | None, reader: AttributeReader) -> dict:
    """Per-attribute accuracy of renders [V,3,H,W] against the prompt and the visual prompt [1,3,h,w]."""
    predicted = reader.read_images(renders)
    target = reader.read_prompt(prompt)
    report: dict = {"views": len(renders), "predicted": predicted, "prompt_target": target,
                    "prompt": _rates(predicted, target, reader.attributes)}
    if visual_prompt is not None:
        seen = {k: v[0] for k, v in reader.read_images(visual_prompt).items()}
        report["visual_prompt_target"] = {k: seen[k] for k in reader.attributes}
        report["visual_prompt"] = _rates(predicted, seen, reader.appearance)
    return report
