"""Save and load the small mini-prior networks (classifier, shape prior) as safetensors."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from safetensors.torch import load_file, save_file
from torch import nn

from tv3dg.atomic import atomic_path
from tv3dg.errors import UserError

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def save_module(model: nn.Module, path: Path) -> None:
    """Write the module's state dict atomically."""
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))


def load_module(model: ModuleT, path: Path | str, what: str) -> ModuleT:
    """Fill `model` from `path` (strict keys) and put it in eval mode; one-line error if missing."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} weights '{path}' are missing; run `tv3dg mini train` to build them")
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()
