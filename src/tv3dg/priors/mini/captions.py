"""Captions of world-2 photos, written the way people caption photos, and reading prompts back.

A caption names some of the object's attributes with free wording (synonyms, sizes, "a photo
of", "3d render", "on the ground") and, now and then, the view the photo was taken from ("a
front view of ...", "... seen from behind", "..., side view"), at the rates of a photo
collection: most captions say nothing of the view. The generator's view-dependent prompts
("<prompt>, back view", `tv3dg.priors.prompts`) are among the phrasings, so the prior learns
what they mean. A plan can make some named views wrong, as careless captions are, so that a view
word steers the prior only loosely. `parse_caption` reads any text back into attributes, None for what it does not name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from tv3dg.priors.mini.world import COLOUR_NAMES, MATERIALS, PATTERNS, SHAPES, SIZES, WorldObject

SHAPE_WORDS = {
    "sphere": ("sphere", "ball"), "cube": ("cube", "box", "block"), "cylinder": ("cylinder", "drum"),
    "cone": ("cone",), "torus": ("torus", "ring", "donut"), "pyramid": ("pyramid",), "capsule": ("capsule", "pill"),
    "octahedron": ("octahedron", "diamond"), "prism": ("prism",), "egg": ("egg", "ovoid"),
}
COLOUR_WORDS = {name: (name,) for name in COLOUR_NAMES} | {"purple": ("purple", "violet"), "grey": ("grey", "gray")}
PATTERN_ADJECTIVES = {
    "plain": ("plain", "solid"), "striped": ("striped", "stripy"), "checkered": ("checkered", "chequered", "checked"),
    "dotted": ("dotted", "spotted"), "pinstriped": ("pinstriped",),
}
PATTERN_PHRASES = {
    "striped": ("with stripes", "with wide stripes"), "checkered": ("with a checkered surface", "with checks"),
    "dotted": ("with dots", "with polka dots"), "pinstriped": ("with thin stripes", "with fine stripes"),
}
"""Patterns said after the shape ("a cube with thin stripes")."""
MATERIAL_WORDS = {"matte": ("matte",), "shiny": ("shiny", "glossy")}
SIZE_WORDS = {"small": ("small", "tiny", "little"), "regular": ("large", "big")}
PREFIXES = ("", "a photo of", "a picture of", "a 3d render of", "a render of", "an image of", "a close up photo of")
SUFFIXES = ("", "on the ground", "on a white background", "in the studio")
VIEW_PREFIXES = {"front": "a front view of", "side": "a side view of", "back": "a back view of", "overhead": "a top view of"}
VIEW_SUFFIXES = {"front": "seen from the front", "side": "seen from the side", "back": "seen from behind", "overhead": "seen from above"}
VIEWS = ("front", "side", "back", "overhead")


@dataclass(frozen=True)
class CaptionPlan:
    """How often a caption names each thing (the photo-collection rates)."""

    appearance_prob: float = 0.5  # colour and pattern named (else the shape alone, for visual prompts)
    view_prob: float = 0.3  # the view named, in one of three wordings
    other_view_prob: float | None = None  # the view named when it is not the front (None: as view_prob)
    view_error_prob: float = 0.0  # a named view is a wrong one, any of the other three alike (careless captions)
    small_said_prob: float = 0.7  # a small object called small
    large_said_prob: float = 0.1  # a regular one called large or big
    shiny_said_prob: float = 0.6
    matte_said_prob: float = 0.1


def _pick(options: tuple[str, ...], generator: torch.Generator) -> str:
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def _chance(p: float, generator: torch.Generator) -> bool:
    return bool(torch.rand(1, generator=generator) < p)


def with_article(words: list[str]) -> list[str]:
    return ["an" if words and words[0][0] in "aeio" else "a", *words]


def caption(obj: WorldObject, view: str | None, generator: torch.Generator, plan: CaptionPlan = CaptionPlan(),
            with_appearance: bool | None = None) -> str:
    """A caption of `obj` photographed from `view` (a `view_direction` name, or None)."""
    shape, colour, pattern, material, size = obj.names
    appearance = _chance(plan.appearance_prob, generator) if with_appearance is None else with_appearance
    words: list[str] = []
    if size == "small" and _chance(plan.small_said_prob, generator):
        words.append(_pick(SIZE_WORDS["small"], generator))
    elif size == "regular" and _chance(plan.large_said_prob, generator):
        words.append(_pick(SIZE_WORDS["regular"], generator))
    said_probability = plan.shiny_said_prob if material == "shiny" else plan.matte_said_prob
    if appearance and _chance(said_probability, generator):
        words.append(_pick(MATERIAL_WORDS[material], generator))
    pattern_after = appearance and pattern in PATTERN_PHRASES and _chance(0.3, generator)
    if appearance:
        words.append(_pick(COLOUR_WORDS[colour], generator))
        if not pattern_after and (pattern != "plain" or _chance(0.5, generator)):
            words.append(_pick(PATTERN_ADJECTIVES[pattern], generator))
    words.append(_pick(SHAPE_WORDS[shape], generator))
    if pattern_after:
        words.append(_pick(PATTERN_PHRASES[pattern], generator))
    text = " ".join(with_article(words))
    view_prob = plan.view_prob if view == "front" or plan.other_view_prob is None else plan.other_view_prob
    view_form = int(torch.randint(3, (1,), generator=generator)) if view is not None and _chance(view_prob, generator) else None
    if view_form is not None and plan.view_error_prob > 0 and _chance(plan.view_error_prob, generator):
        view = _pick(tuple(v for v in VIEWS if v != view), generator)
    prefix = VIEW_PREFIXES[view] if view_form == 0 else _pick(PREFIXES, generator)
    text = f"{prefix} {text}".strip()
    suffix = _pick(SUFFIXES, generator)
    text = f"{text} {suffix}".strip()
    if view_form == 1:
        text = f"{text} {VIEW_SUFFIXES[view]}"
    elif view_form == 2:
        text = f"{text}, {view} view"  # the generator's own view-dependent wording
    return text


def vocabulary() -> list[str]:
    """Every word a caption can hold (the tokenizer gives each its own token)."""
    texts = [*PREFIXES, *SUFFIXES, *VIEW_PREFIXES.values(), *VIEW_SUFFIXES.values(), *VIEWS, "a an view"]
    for table in (SHAPE_WORDS, COLOUR_WORDS, PATTERN_ADJECTIVES, PATTERN_PHRASES, MATERIAL_WORDS, SIZE_WORDS):
        texts += [w for options in table.values() for w in options]
    return sorted({w for text in texts for w in re.findall(r"[a-z0-9]+", text)})


@dataclass(frozen=True)
class ParsedCaption:
    """Attribute indices named by a text (None: not named) and the view it names, if any."""

    shape: int | None = None
    colour: int | None = None
    pattern: int | None = None
    material: int | None = None
    size: int | None = None
    view: str | None = None


def _index(words: list[str], table: dict[str, tuple[str, ...]], names: tuple[str, ...]) -> int | None:
    return next((names.index(name) for w in words for name, options in table.items() if w in options), None)


def parse_caption(text: str) -> ParsedCaption:
    """What `text` names: 'thin/fine stripes' is pinstriped, 'stripes' striped, and so on."""
    lowered = text.lower()
    words = re.findall(r"[a-z0-9]+", lowered)
    thin = re.search(r"\b(thin|fine)[ -]?(striped|stripes|stripy)\b", lowered)
    pattern = PATTERNS.index("pinstriped") if thin else _index(words, PATTERN_ADJECTIVES, PATTERNS)
    if pattern is None:
        phrases = [(name, p) for name, options in PATTERN_PHRASES.items() for p in options]
        pattern = next((PATTERNS.index(name) for name, phrase in sorted(phrases, key=lambda np: -len(np[1]))
                        if re.search(rf"\b{phrase}\b", lowered)), None)
    view = next((v for v in VIEWS if re.search(rf"\b{v} view\b", lowered)), None)
    if view is None:
        view = next((v for v, phrase in VIEW_SUFFIXES.items() if phrase in lowered), None)
    if view is None and "top view" in lowered:
        view = "overhead"
    size = _index(words, {"small": SIZE_WORDS["small"], "regular": SIZE_WORDS["regular"]}, SIZES)
    return ParsedCaption(
        shape=_index(words, SHAPE_WORDS, SHAPES), colour=_index(words, COLOUR_WORDS, COLOUR_NAMES), pattern=pattern,
        material=_index(words, MATERIAL_WORDS, MATERIALS), size=size, view=view,
    )
