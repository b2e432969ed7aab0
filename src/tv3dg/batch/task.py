"""One batch job, as it runs on a Ray worker: skip it if done, resume it if started, else start it.

This module does not import Ray; `run_batch` wraps `run_job` in a Ray task. Everything the driver
needs comes back in the returned `JobOutcome` (including the asset's front view), so the driver
never reads a job's folder: that folder lives on whichever node ran the job.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tv3dg.atomic import write_text_atomic
from tv3dg.config import dump_yaml
from tv3dg.errors import UserError
from tv3dg.export.video import to_uint8
from tv3dg.gaussians.ply import load_ply
from tv3dg.pipeline.checkpoint import saved_step
from tv3dg.pipeline.config import GenerateConfig
from tv3dg.pipeline.outputs import render_views
from tv3dg.pipeline.run import WHITE, generate

WORKER_FILE = "worker.json"  # pid and host of the process running (or that last ran) the job


@dataclass
class JobOutcome:
    status: str  # "done" | "failed"
    reason: str = ""
    skipped: bool = False  # finished by an earlier run of the batch; not run again
    resumed_from: int | None = None  # the checkpoint step this run continued from (0: a fresh start)
    wall_s: float = 0.0  # seconds this run of the job took on its worker (loading, loop, export)
    metrics: dict | None = None
    front_view: np.ndarray | None = None  # [H, W, 3] uint8
    node: str = ""  # the Ray node that ran the job (set by the batch runner), where its folder lives


def run_job(config: GenerateConfig, out_dir: str, threads: int) -> JobOutcome:
    """Run one job into `out_dir`. A `UserError` is the job's failure (returned, never retried);
    any other exception propagates, so that Ray retries the task, which then resumes."""
    started = time.perf_counter()
    torch.set_num_threads(max(1, threads))
    out = Path(out_dir)
    try:
        metrics = finished_metrics(out, config)
        if metrics is not None:
            return JobOutcome("done", skipped=True, metrics=metrics, front_view=front_view(out, config))
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / WORKER_FILE, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n")
        step = saved_step(out)
        result = generate(config, out, resume=step is not None, progress=False)
        if result.interrupted:
            return JobOutcome("failed", f"interrupted at step {result.metrics['steps']}; run the batch again to resume",
                              resumed_from=step or 0, wall_s=time.perf_counter() - started)
        return JobOutcome("done", resumed_from=step or 0, wall_s=time.perf_counter() - started,
                          metrics=result.metrics, front_view=front_view(out, config))
    except UserError as err:
        return JobOutcome("failed", str(err).splitlines()[0], wall_s=time.perf_counter() - started)


def finished_metrics(out: Path, config: GenerateConfig) -> dict | None:
    """metrics.json of a finished run of exactly `config` in `out`, or None if there is none yet."""
    config_file, metrics_file = out / "config.yaml", out / "metrics.json"
    if not config_file.is_file():
        return None
    if config_file.read_text(encoding="utf-8") != dump_yaml(config):
        raise UserError(f"'{out}' holds a run of another config; remove that folder or give the job another id")
    if not metrics_file.is_file() or not (out / "asset.ply").is_file():
        return None
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    return None if metrics.get("interrupted") or metrics.get("steps", 0) < config.steps else metrics


def front_view(out: Path, config: GenerateConfig) -> np.ndarray:
    """The asset's front view at the turntable's resolution, for the batch's contact sheet."""
    export = dataclasses.replace(config.export, views=1)
    render = render_views(load_ply(out / "asset.ply"), export, export.turntable_resolution, WHITE)
    return to_uint8(render[0].permute(1, 2, 0))
