"""`run_batch`: one Ray task per job; Ray schedules, places and retries them, we only watch.

Fault tolerance is Ray's (`max_retries` on worker death and unexpected errors) plus generate's
own resume: a retried task finds the job's checkpoint and continues from it, so its asset equals
that of an uninterrupted run. A `UserError` (a bad image, a NaN stop) is the job's result, not a
crash: it is recorded with its reason and never retried.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from tv3dg.batch.jobs import Job, load_jobs
from tv3dg.batch.report import make_row, write_contact_sheet, write_index
from tv3dg.batch.task import JobOutcome, run_job
from tv3dg.errors import UserError
from tv3dg.pipeline.config import GenerateConfig
from tv3dg.pipeline.interrupt import sigterm_as_interrupt

DEFAULT_MAX_RETRIES = 3
POLL_S = 1.0  # progress-bar refresh while no job finishes
INTERRUPTED = "the batch was interrupted; run the same command again to resume"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("tv3dg batch needs Ray; install it with: pip install 'tv3dg[batch]'") from None
    return ray


def connect(ray: Any, address: str | None) -> bool:
    """Attach to `address` ("auto", "host:port", "ray://host:port") or start Ray on this machine's cores.

    Returns whether this call started Ray (and so must shut it down). An already initialised
    Ray (e.g. by a caller of `run_batch`) is used as it is."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ray.init(address="local", num_cpus=cores, include_dashboard=False, **quiet)
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise UserError(f"could not attach to the Ray cluster at '{address}' ({str(err).splitlines()[0]}); "
                            "start one with `ray start --head` or drop --address") from None
    return True


def run_batch(
    jobs: str | Path | Sequence[dict],
    out_dir: str | Path,
    *,
    address: str | None = None,
    gpus_per_job: float | None = None,
    cpus_per_job: float = 1,
    max_retries: int = DEFAULT_MAX_RETRIES,
    overrides: Sequence[str] = (),
    preset: str | None = None,
    progress: bool = True,
) -> list[dict]:
    """Run every job (a jobs file, or a list of job dicts) into `out_dir/<job id>/`; returns the index rows.

    `overrides` (key=value) apply to every job, a job's own fields and overrides win; `preset` is
    the config of jobs that name none. `gpus_per_job=None`: one GPU per job whose prior runs on a
    GPU when the cluster has GPUs, else none. Writes index.jsonl, index.csv, contact_sheet.png.
    """
    check_job_size(cpus_per_job, gpus_per_job, max_retries)
    job_list = load_jobs(jobs, overrides, preset)
    out = Path(out_dir).expanduser().resolve()
    ray = import_ray()
    started_ray = connect(ray, address)
    try:
        check_fits_a_node(ray, cpus_per_job, gpus_per_job)
        out.mkdir(parents=True, exist_ok=True)
        outcomes = _run(ray, job_list, out, gpus_per_job, cpus_per_job, max_retries, progress)
    finally:
        if started_ray:
            ray.shutdown()
    rows = [make_row(job, outcome, out) for job, outcome in zip(job_list, outcomes)]
    write_index(out, rows)
    write_contact_sheet(out, rows, [outcome.front_view for outcome in outcomes])
    return rows


def check_job_size(cpus_per_job: float, gpus_per_job: float | None, max_retries: int) -> None:
    """One-line errors for a job size Ray cannot use (NaN and infinity included)."""
    if not (math.isfinite(cpus_per_job) and cpus_per_job > 0):
        raise UserError(f"--cpus-per-job must be a positive number (e.g. 1), got {cpus_per_job:g}")
    if gpus_per_job is not None and not (math.isfinite(gpus_per_job) and gpus_per_job >= 0):
        raise UserError(f"--gpus-per-job must be 0 or a positive number (e.g. 1 or 0.5), got {gpus_per_job:g}")
    if max_retries < 0:
        raise UserError(f"--max-retries must be 0 or more, got {max_retries}")


def check_fits_a_node(ray: Any, cpus_per_job: float, gpus_per_job: float | None) -> None:
    """Ray waits forever for a task that no node can hold: refuse such a job size before submitting."""
    gpus = gpus_per_job or 0.0
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if any(r.get("CPU", 0) >= cpus_per_job and r.get("GPU", 0) >= gpus for r in nodes):
        return
    largest = max(nodes, key=lambda r: (r.get("CPU", 0), r.get("GPU", 0)), default={})
    raise UserError(
        f"no node of the Ray cluster has {cpus_per_job:g} CPUs and {gpus:g} GPUs for one job (the largest has "
        f"{largest.get('CPU', 0):g} CPUs and {largest.get('GPU', 0):g} GPUs); lower --cpus-per-job or --gpus-per-job"
    )


def run_job_on_node(config: GenerateConfig, out_dir: str, threads: int) -> JobOutcome:
    """`run_job` as a Ray task, with the id of the node it ran on: the job's folder is on that node."""
    import ray

    outcome = run_job(config, out_dir, threads)
    return dataclasses.replace(outcome, node=ray.get_runtime_context().get_node_id())


def _run(ray: Any, jobs: list[Job], out: Path, gpus_per_job: float | None, cpus_per_job: float,
         max_retries: int, progress: bool) -> list[JobOutcome]:
    """Submit one task per job, then collect them as they finish, with a progress bar over jobs.

    Ctrl-C or SIGTERM cancels the unfinished tasks and writes the index of what finished (the others
    read as interrupted) before the interrupt goes on up."""
    task = ray.remote(run_job_on_node)
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    pending: dict[Any, int] = {}
    for index, job in enumerate(jobs):
        gpus = gpus_per_job if gpus_per_job is not None else float(has_gpus and job.config.prior.device != "cpu")
        options = task.options(num_cpus=cpus_per_job, num_gpus=gpus, max_retries=max_retries, retry_exceptions=True,
                               name=f"tv3dg:{job.id}")
        pending[options.remote(job.config, str(out / job.id), math.ceil(cpus_per_job))] = index
    outcomes: list[JobOutcome | None] = [None] * len(jobs)
    slots = _slots(ray, cpus_per_job, gpus_per_job)
    with tqdm(total=len(jobs), desc="batch", unit="job", disable=not progress) as bar, sigterm_as_interrupt():
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    outcomes[pending.pop(ref)] = _outcome(ray, ref, max_retries)
                    bar.update(1)
                failed = sum(o is not None and o.status == "failed" for o in outcomes)
                done = sum(o is not None and o.status == "done" for o in outcomes)
                bar.set_postfix(done=done, running=min(len(pending), slots), failed=failed)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            bar.write(f"tv3dg batch: interrupted; {len(pending)} unfinished job(s) resume on the next run")
            _write_partial_index(jobs, outcomes, out)
            raise
    return outcomes  # type: ignore[return-value]


def _outcome(ray: Any, ref: Any, max_retries: int) -> JobOutcome:
    """The task's result, or a failed outcome naming why Ray gave up on it."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = err.cause if err.cause is not None else err
        message = str(cause).strip().splitlines()
        reason = f"{type(cause).__name__}: {message[0]}" if message else type(cause).__name__
        return JobOutcome("failed", f"{reason} (after {max_retries} retries)")
    except ray.exceptions.RayError as err:
        message = str(err).strip().splitlines()
        return JobOutcome("failed", f"{type(err).__name__}: {message[0] if message else ''} (after {max_retries} retries)")


def _slots(ray: Any, cpus_per_job: float, gpus_per_job: float | None) -> int:
    """How many jobs the cluster runs at once (for the 'running' count: Ray does not say which queued
    task has started without its dashboard)."""
    resources = ray.cluster_resources()
    slots = int(resources.get("CPU", 1) // cpus_per_job)
    if gpus_per_job:
        slots = min(slots, int(resources.get("GPU", 0) // gpus_per_job))
    return max(slots, 1)


def _write_partial_index(jobs: list[Job], outcomes: list[JobOutcome | None], out: Path) -> None:
    rows = [make_row(job, outcome or JobOutcome("failed", INTERRUPTED), out) for job, outcome in zip(jobs, outcomes)]
    write_index(out, rows)
