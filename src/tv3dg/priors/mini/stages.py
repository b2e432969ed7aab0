"""The resumable stage runner behind `tv3dg mini train`.

Stages run in order and are resumable: each saves its state to the run folder every few
minutes, so training can run in chunks (`--max-minutes`) or in the background. A stage draws the
randomness of its step `k` from a generator made for (seed, stage, k), so an interrupted and
resumed run makes the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch

from tv3dg.atomic import write_text_atomic
from tv3dg.errors import UserError
from tv3dg.priors.mini.checkpoint import load_training_state, save_training_state


class StageSettings(Protocol):
    threads: int
    checkpoint_minutes: float


class StageClock:
    """Tracks a stage's wall time across chunks and says when to checkpoint or stop."""

    def __init__(self, run_dir: Path, stage: str, deadline: float, checkpoint_minutes: float):
        self.path = run_dir / "wall_times.json"
        self.stage = stage
        self.deadline = deadline
        self.interval = checkpoint_minutes * 60
        self.started = self.last_save = time.time()

    def due(self) -> bool:
        return time.time() - self.last_save >= self.interval

    def expired(self) -> bool:
        return time.time() >= self.deadline

    def record(self) -> None:
        now = time.time()
        times = json.loads(self.path.read_text()) if self.path.is_file() else {}
        times[self.stage] = times.get(self.stage, 0.0) + (now - self.started)
        write_text_atomic(self.path, json.dumps(times, indent=1))
        self.started = self.last_save = now


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def done_marker(run_dir: Path, stage: str) -> Path:
    return run_dir / f"{stage}.done"


def run_loop(
    run_dir: Path, stage: str, clock: StageClock, steps: int, modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer, train_step: Callable[[int, torch.Generator], float],
    generator: Callable[[int], torch.Generator],
) -> bool:
    """The resumable loop every stage shares: restore, step until done or out of time, checkpoint.

    `generator(step)` is the random source of a step, so a resumed run repeats an uninterrupted one.
    """
    state_path = run_dir / f"{stage}_state.safetensors"
    start = load_training_state(state_path, modules, optimizer)
    log(f"{stage}: from step {start} of {steps}")
    running = None
    for step in range(start, steps):
        loss = train_step(step, generator(step))
        running = loss if running is None else 0.98 * running + 0.02 * loss
        if (step + 1) % 50 == 0:
            log(f"{stage}: step {step + 1}/{steps} loss {running:.4f}")
        if step + 1 == steps or clock.due() or clock.expired():
            save_training_state(state_path, modules, optimizer, step + 1)
            clock.record()
            if clock.expired() and step + 1 < steps:
                return False
    return True


StageFunction = Callable[[Path, object, StageClock], bool]
"""(run folder, settings, clock) -> True when the stage has finished, False when out of time."""


@dataclass(frozen=True)
class StagePlan:
    """The stages: their order, what each runs, and which stages each needs done first."""

    order: tuple[str, ...]
    functions: dict[str, StageFunction]
    inputs: dict[str, tuple[str, ...]]


def train(run_dir: Path, config: StageSettings, plan: StagePlan, max_minutes: float | None = None,
          stages: tuple[str, ...] | None = None) -> bool:
    """Run (or resume) `stages` (default: all) in the plan's order; True when they are all done.

    A subset can run in a second process beside the first (e.g. the classifier while the VAE
    trains), as long as the stages it needs are done and no other process runs the same stage.
    """
    stages = plan.order if stages is None else stages
    for stage in stages:
        missing = [s for s in plan.inputs[stage] if s not in stages and not done_marker(run_dir, s).is_file()]
        if missing:
            raise UserError(f"stage '{stage}' needs stage '{missing[0]}' first; run it or leave out --stage")
    torch.set_num_threads(config.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + (max_minutes * 60 if max_minutes is not None else float("inf"))
    for stage in [s for s in plan.order if s in stages]:
        if done_marker(run_dir, stage).is_file():
            continue
        clock = StageClock(run_dir, stage, deadline, config.checkpoint_minutes)
        log(f"stage {stage}")
        if not plan.functions[stage](run_dir, config, clock):
            log(f"stopped in stage {stage} (time limit); run again to resume")
            return False
        clock.record()
        write_text_atomic(done_marker(run_dir, stage), "done\n")
    return True
