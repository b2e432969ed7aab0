"""The learning-rate schedule of every mini training stage."""

from __future__ import annotations

import math


def cosine_lr(base: float, step: int, steps: int, warmup: int = 50) -> float:
    """Linear warm-up, then cosine decay to zero: a pure function of the step (resumable)."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))
