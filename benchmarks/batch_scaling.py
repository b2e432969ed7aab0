"""Batch scaling: N mini-prior jobs on Ray with one worker per core vs one after another in one process.

    python benchmarks/batch_scaling.py [--jobs 4] [--steps 100] [--out runs/batch_scaling] [key=value ...]

Both sides run the same resolved jobs with one torch thread per job (`OMP_WAIT_POLICY=PASSIVE` is
set, as on a shared machine). It prints, and writes to benchmarks/results/batch_scaling.json:
the wall time of each side, the speed-up, Ray's start-up time, and the per-job overhead Ray adds:
(busy wall time x parallel slots - the jobs' own time inside their workers) / N, i.e. the time a
slot spends on anything but running a job (scheduling, starting workers and importing torch in
them, returning results), spread over the jobs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from machine import command_line, describe_machine  # noqa: E402

from tv3dg.batch import run_batch  # noqa: E402
from tv3dg.batch.jobs import load_jobs  # noqa: E402
from tv3dg.console import quiet_third_party  # noqa: E402
from tv3dg.pipeline.run import generate  # noqa: E402

PROMPTS = ("a red striped cube", "a blue checkered sphere", "a green torus", "a yellow dotted cone",
           "a purple cylinder", "an orange striped pyramid", "a pink sphere", "a cyan checkered cube")
RESULTS = Path(__file__).parent / "results" / "batch_scaling.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs/batch_scaling"))
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    import ray

    quiet_third_party()
    cores = len(os.sched_getaffinity(0))
    overrides = [f"steps={args.steps}", *args.overrides]
    job_dicts = [{"prompt": PROMPTS[i % len(PROMPTS)], "seed": i} for i in range(args.jobs)]
    shutil.rmtree(args.out, ignore_errors=True)

    torch.set_num_threads(1)
    sequential_job_s = []
    started = time.perf_counter()
    for job in load_jobs(job_dicts, overrides):
        job_started = time.perf_counter()
        generate(job.config, args.out / "sequential" / job.id, progress=False)
        sequential_job_s.append(time.perf_counter() - job_started)
    sequential_s = time.perf_counter() - started

    started = time.perf_counter()
    ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ray_start_s = time.perf_counter() - started
    rows = run_batch(job_dicts, args.out / "ray", overrides=overrides, cpus_per_job=1, progress=False)
    busy_s = time.perf_counter() - started - ray_start_s
    ray.shutdown()
    ray_s = time.perf_counter() - started
    assert all(row["status"] == "done" for row in rows), rows

    job_s = [row["wall_s"] for row in rows]
    slots = min(cores, args.jobs)
    report = {
        "command": command_line(__file__), "machine": describe_machine() + " at the end",
        "jobs": args.jobs, "steps": args.steps, "cores": cores, "overrides": overrides,
        "load_average_at_end": os.getloadavg(),
        "sequential_s": round(sequential_s, 1), "sequential_job_s": [round(s, 1) for s in sequential_job_s],
        "ray_s": round(ray_s, 1), "ray_start_s": round(ray_start_s, 1), "ray_busy_s": round(busy_s, 1),
        "ray_job_s": job_s, "speed_up": round(sequential_s / ray_s, 2),
        "speed_up_without_ray_start": round(sequential_s / busy_s, 2),
        "ray_overhead_per_job_s": round((busy_s * slots - sum(job_s)) / args.jobs, 1),
    }
    print(json.dumps(report, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
