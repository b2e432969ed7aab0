"""One-file checkpoints (safetensors + JSON metadata), written atomically.

A checkpoint holds everything the loop needs to continue bit-for-bit: the Gaussians, Adam's
moments, the densification statistics, the random generator, the visual prompt, the SGC
references and the bookkeeping (step, UNet counts, elapsed time, loss history).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import Tensor

from tv3dg.atomic import atomic_path
from tv3dg.errors import UserError
from tv3dg.gaussians.densify import DensifyStrategy
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.optim import OptimConfig, build_optimizer

CHECKPOINT_NAME = "checkpoints/last.safetensors"
DENSIFY_STATS = ("grad_sum", "grad_count", "max_screen_fraction")


@dataclass
class RunState:
    """What the loop carries from step to step besides the tensors."""

    step: int = 0
    unet_calls: int = 0
    unet_rows: int = 0
    setup_unet_calls: int = 0  # of unet_calls: Func Switch and SGC reference sampling before step 0
    setup_unet_rows: int = 0
    elapsed_s: float = 0.0
    nonfinite_steps: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    densify: dict[str, int] = field(default_factory=dict)  # densification totals: cloned, split, pruned, resets

    def log(self, scalars: dict[str, float]) -> None:
        for key, value in scalars.items():
            self.history.setdefault(key, []).append(float(value))

    def count(self, counts: dict[str, int]) -> None:
        for key, value in counts.items():
            self.densify[key] = self.densify.get(key, 0) + value


@dataclass
class Checkpoint:
    gaussians: Gaussians
    optimizer: torch.optim.Adam
    densify: DensifyStrategy
    generator_state: Tensor
    extras: dict[str, Tensor]  # visual prompt, SGC references
    state: RunState


def save_checkpoint(out_dir: Path, checkpoint: Checkpoint) -> None:
    tensors: dict[str, Tensor] = {f"gaussians.{k}": v for k, v in checkpoint.gaussians.state_dict().items()}
    for group in checkpoint.optimizer.param_groups:
        for key, value in checkpoint.optimizer.state.get(group["params"][0], {}).items():
            tensors[f"optim.{group['name']}.{key}"] = value
    for name in DENSIFY_STATS:
        value = getattr(checkpoint.densify, name)
        if value is not None:
            tensors[f"densify.{name}"] = value
    tensors["rng"] = checkpoint.generator_state
    tensors.update({f"extra.{k}": v for k, v in checkpoint.extras.items()})
    metadata = {"state": json.dumps(checkpoint.state.__dict__)}
    with atomic_path(out_dir / CHECKPOINT_NAME) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_checkpoint(out_dir: Path, optim_config: OptimConfig, densify: DensifyStrategy) -> Checkpoint:
    path = out_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise UserError(f"'{out_dir}' has no checkpoint to resume ({CHECKPOINT_NAME}); start a new run instead")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            state = RunState(**json.loads(handle.metadata()["state"]))
    except (SafetensorError, KeyError, TypeError, ValueError, OSError) as err:
        raise UserError(f"checkpoint '{path}' is unreadable ({type(err).__name__}); start a new run") from None
    gaussians = Gaussians.from_state_dict(_section(tensors, "gaussians"))
    optimizer = build_optimizer(gaussians, optim_config)
    moments = _section(tensors, "optim")
    for group in optimizer.param_groups:
        entries = {k.split(".", 1)[1]: v for k, v in moments.items() if k.split(".", 1)[0] == group["name"]}
        if entries:
            optimizer.state[group["params"][0]] = entries
    for name, value in _section(tensors, "densify").items():
        setattr(densify, name, value)
    return Checkpoint(gaussians, optimizer, densify, tensors["rng"], _section(tensors, "extra"), state)


def saved_step(out_dir: Path) -> int | None:
    """The step of the checkpoint in `out_dir` (reads only its metadata), or None if there is none."""
    path = out_dir / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            return int(json.loads(handle.metadata()["state"])["step"])
    except (SafetensorError, KeyError, TypeError, ValueError, OSError) as err:
        raise UserError(f"checkpoint '{path}' is unreadable ({type(err).__name__}); start a new run") from None


def _section(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

