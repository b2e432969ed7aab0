"""`tv3dg batch JOBS --out DIR`: many generations on Ray, each job resumable, the batch re-runnable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tv3dg.commands.arguments import add_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch", help="run many generations (a .txt or .jsonl jobs file) on Ray, resumable",
        description="Run every job of JOBS (a .txt file: one prompt a line; a .jsonl file: one job a line with "
        "prompt and optionally image, mode, loss, seed, steps, config, overrides, id, tags) as a Ray task writing "
        "DIR/<job id>/. Running the same command again skips finished jobs and resumes unfinished ones. key=value "
        "overrides apply to every job; a job's own fields and overrides win. Needs: pip install 'tv3dg[batch]'.",
    )
    parser.add_argument("jobs", type=Path, metavar="JOBS", help="jobs file (.txt or .jsonl)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (one subfolder per job)")
    parser.add_argument("--address", help="attach to a Ray cluster: auto, HOST:PORT or ray://HOST:PORT "
                        "(default: start Ray on this machine's cores)")
    parser.add_argument("--gpus-per-job", type=float, metavar="G",
                        help="GPUs per job (default: 1 when the cluster has GPUs and the job's prior runs on one, else 0)")
    parser.add_argument("--cpus-per-job", type=float, default=1, metavar="C", help="CPUs per job, also its torch threads (default 1)")
    parser.add_argument("--max-retries", type=int, metavar="R", help="retries of a job whose worker dies (default 3)")
    parser.add_argument("--config", help="preset (mini, sd15) or YAML file for jobs that name none (default mini)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overrides(parser, "steps=300 sgc.enabled=false; they apply to every job")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from tv3dg.batch.runner import DEFAULT_MAX_RETRIES, run_batch

    rows = run_batch(
        args.jobs, args.out, address=args.address, gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job,
        max_retries=DEFAULT_MAX_RETRIES if args.max_retries is None else args.max_retries,
        overrides=args.overrides, preset=args.config, progress=not args.quiet,
    )
    failed = [row for row in rows if row["status"] != "done"]
    skipped = sum(row["skipped"] for row in rows)
    print(f"{len(rows) - len(failed)} of {len(rows)} jobs done ({skipped} already done before) -> {args.out}/index.csv")
    for row in failed:
        print(f"failed: {row['id']}: {row['reason']}", file=sys.stderr)
    if failed:
        raise SystemExit(1)
