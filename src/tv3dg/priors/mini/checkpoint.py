"""Resumable training state as safetensors (modules, optimiser moments, step): no pickles."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tv3dg.atomic import atomic_path, write_text_atomic


def save_training_state(path: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer, step: int) -> None:
    """Write `path` (.safetensors) and `path.json` (the step); the json is written last."""
    tensors = {f"{name}.{k}": v.detach().contiguous() for name, m in modules.items() for k, v in m.state_dict().items()}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        for key, value in optimizer.state.get(p, {}).items():
            if torch.is_tensor(value):
                tensors[f"optim.{i}.{key}"] = value.detach().contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    write_text_atomic(path.with_suffix(".json"), json.dumps({"step": step}))


def load_training_state(path: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer | None) -> int:
    """Restore modules (and optimiser moments) from `path`; returns the step, 0 if absent."""
    meta = path.with_suffix(".json")
    if not meta.is_file() or not path.is_file():
        return 0
    tensors = load_file(str(path))
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    if optimizer is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for i, p in enumerate(params):
            state = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"optim.{i}.")}
            if state:
                optimizer.state[p] = state
    return int(json.loads(meta.read_text())["step"])
