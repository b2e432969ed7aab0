"""Captions of world objects from templates, and parsing any prompt back into attributes."""

from __future__ import annotations

import re

from tv3dg.priors.mini.world import COLOUR_NAMES, SHAPES, WorldObject

PATTERN_SYNONYMS = {"plain": 0, "striped": 1, "stripes": 1, "stripy": 1, "checkered": 2, "checker": 2, "chequered": 2}
FULL_TEMPLATES = (
    "a {colour} {pattern} {shape}",
    "a photo of a {colour} {pattern} {shape}",
    "a {pattern} {colour} {shape}",
    "a {colour} {shape} with a {pattern} surface",
    "a render of a {colour} {pattern} {shape}",
)
SHAPE_ONLY_TEMPLATES = ("a {shape}", "a photo of a {shape}", "a render of a {shape}")
"""Templates without colour or pattern: the appearance must then come from a visual prompt."""


def caption(obj: WorldObject, template: int = 0, with_appearance: bool = True) -> str:
    """The caption of `obj` by template index (modulo the number of templates)."""
    shape, colour, pattern = obj.names
    if not with_appearance:
        return SHAPE_ONLY_TEMPLATES[template % len(SHAPE_ONLY_TEMPLATES)].format(shape=shape)
    text = FULL_TEMPLATES[template % len(FULL_TEMPLATES)]
    return text.format(colour=colour, pattern=pattern, shape=shape)


def vocabulary() -> list[str]:
    """Every word the templates can produce (the tokenizer gives each its own token)."""
    words = set(SHAPES) | set(COLOUR_NAMES) | set(PATTERN_SYNONYMS)
    for template in FULL_TEMPLATES + SHAPE_ONLY_TEMPLATES:
        words |= {w for w in re.findall(r"[a-z]+", re.sub(r"\{\w+\}", " ", template))}
    return sorted(words)


def parse_caption(text: str) -> tuple[int | None, int | None, int | None]:
    """(shape, colour, pattern) indices named in `text`; None for an attribute it does not name."""
    words = re.findall(r"[a-z]+", text.lower())
    shape = next((SHAPES.index(w) for w in words if w in SHAPES), None)
    colour = next((COLOUR_NAMES.index(w) for w in words if w in COLOUR_NAMES), None)
    pattern = next((PATTERN_SYNONYMS[w] for w in words if w in PATTERN_SYNONYMS), None)
    return shape, colour, pattern

