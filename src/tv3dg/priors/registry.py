"""Named models: weights shipped with a package and selected by a name such as "mini".

The core (model and IP-Adapter loading, the initialisers, the attribute metrics) looks a name up
here and never imports the package that provides it; that package registers itself when it is
imported, and `named_model` imports the providers listed in `PROVIDERS` on first use. So the
dependency points one way: the provider knows the core, the core knows only the name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
from torch import Tensor

from tv3dg.render.cameras import Cameras

PROVIDERS = ("tv3dg.priors.mini.registration",)
"""Modules that register named models when imported (the bundled mini prior)."""


class AttributeReader(Protocol):
    """Reads discrete attributes off renders and prompts, for attribute-accuracy metrics."""

    attributes: tuple[str, ...]  # those a prompt can name, e.g. ("shape", "colour", "pattern"); readings may hold more
    appearance: tuple[str, ...]  # those a visual prompt can carry (colour, pattern)

    def read_images(self, images: Tensor) -> dict[str, list[str]]:
        """Attribute names per image of [B,3,H,W] in [0,1]."""
        ...

    def read_prompt(self, prompt: str) -> dict[str, str]:
        """The attributes a prompt names."""
        ...


ShapePrior = Callable[[str, int, torch.Generator], tuple[Tensor, Tensor]]
"""(prompt, number of points, generator) -> (xyz [n,3] world units, rgb [n,3] in [0,1])."""

TrueViews = Callable[[str, Cameras], "tuple[Tensor, Tensor] | None"]
"""(prompt, cameras) -> (rgb [V,3,H,W], alpha [V,1,H,W]) of the object the prompt names, or None
where the prompt does not pin one object down: the ground truth of colour measures."""


@dataclass(frozen=True)
class NamedModel:
    """What a name stands for: weight locations, and the optional extras only it provides.

    The extras are factories, so nothing is loaded until a run needs it.
    """

    name: str
    model_dir: Path  # diffusers SD-1.5-layout folder
    ip_adapter: Path | None = None  # IP-Adapter .safetensors (official key layout)
    image_encoder_dir: Path | None = None  # its CLIP image encoder
    missing_hint: str = ""  # how to get the weights when the files are absent
    shape_prior: Callable[[], ShapePrior] | None = None  # text -> coloured points, for init.kind=mini_shape_prior
    attribute_reader: Callable[[], AttributeReader] | None = None  # attribute metrics of a run
    # Every word the text encoder was trained on, for a prior trained on a closed vocabulary: other
    # words are dropped from prompts (and reported) rather than fed in as pieces it never saw.
    vocabulary: Callable[[], frozenset[str]] | None = None
    true_views: TrueViews | None = None  # renders of the prompt's true object, for oversaturation


MODELS: dict[str, NamedModel] = {}
_providers_loaded = False


def register(model: NamedModel) -> None:
    """Make `model` available under its name (a provider calls this when imported)."""
    MODELS[model.name] = model


def named_models() -> list[NamedModel]:
    """Every registered model (the providers are imported on the first call)."""
    global _providers_loaded
    if not _providers_loaded:
        _providers_loaded = True
        for provider in PROVIDERS:
            importlib.import_module(provider)
    return list(MODELS.values())


def named_model(name: str) -> NamedModel | None:
    """The model registered under `name`, or None when `name` is not a registered name."""
    return next((model for model in named_models() if model.name == name), None)
