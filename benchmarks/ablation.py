"""The TV-3DG ablation in the mini world, in one command: build the grid (variants x cases x seeds),
run it through `tv3dg batch` (parallel over cores or a Ray cluster, resumable), measure, and write
DIR/results.json, docs/ablation.md and its figure.

    python benchmarks/ablation.py --out outputs/ablation            # the full grid (resumable)
    python benchmarks/ablation.py --out outputs/ablation --limit 60  # the next 60 jobs of it, then report
    python benchmarks/ablation.py --quick --out outputs/ablation-quick

Run the same command again to resume: finished jobs are skipped, unfinished ones continue from
their checkpoints. The full grid keeps every finished asset in a ledger in the repository
(`benchmarks/results/ablation/`, see `ablation_ledger.py`), so it can also be run in pieces on
different days or machines: each piece runs only the jobs the ledger lacks, seed by seed, and the
report covers everything recorded. Extra `key=value` arguments are config overrides for every job.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ablation_analysis import (claim_verdicts, collect, full_grid_estimate, paired_table, progress_table, summary_table,
                               term_table)
from ablation_grid import Grid, job_id, write_jobs
from ablation_ledger import Ledger, commit, fingerprint, job_configs, without_nan
from ablation_report import figure, markdown
from forward_stops import call_forwarding_stops
from machine import cpu_name, describe_machine

from tv3dg.atomic import write_text_atomic

LEDGER = Path(__file__).resolve().parent / "results" / "ablation"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder: jobs, runs, results.json")
    parser.add_argument("--quick", action="store_true", help="the reduced grid (3 cases, 1 seed, 20 steps): a smoke test")
    parser.add_argument("--cases", type=int, help="keep only the first N cases of the grid")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 instead of the grid's")
    parser.add_argument("--steps", type=int, help="steps per asset instead of the grid's")
    parser.add_argument("--variants", nargs="+", metavar="NAME", help="run only these variants (default: all)")
    parser.add_argument("--address", help="Ray cluster address for tv3dg batch (default: this machine)")
    parser.add_argument("--cpus-per-job", type=int, default=1)
    parser.add_argument("--gpus-per-job", type=float)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="parallel jobs assumed by the full-grid wall-time estimate")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: report on the jobs that have finished so far (e.g. between pieces of the full grid)")
    parser.add_argument("--limit", type=int, help="run at most N of the jobs still to do (seed by seed), then report")
    parser.add_argument("--ledger", type=Path,
                        help=f"where finished assets are kept between pieces (default: {LEDGER} for the full grid, "
                             "DIR/ledger for --quick)")
    parser.add_argument("--doc", type=Path, default=Path("docs/ablation.md"), help="where the report goes (figure beside it)")
    parser.add_argument("overrides", nargs="*", help="config overrides for every job, e.g. prior.device=cuda")
    return parser.parse_args(argv)


def batch_command(jobs: Path, runs: Path, args: argparse.Namespace) -> list[str]:
    """`tv3dg batch JOBS --out RUNS ...`; it skips finished jobs and resumes unfinished ones."""
    command = [sys.executable, "-m", "tv3dg.cli", "batch", str(jobs), "--out", str(runs),
               "--cpus-per-job", str(args.cpus_per_job)]
    if args.address:
        command += ["--address", args.address]
    if args.gpus_per_job is not None:
        command += ["--gpus-per-job", str(args.gpus_per_job)]
    if args.quiet:
        command.append("--quiet")
    return command + list(args.overrides)


def to_do(grid: Grid, ledger: Ledger, wanted: dict[str, str], limit: int | None) -> set[str]:
    """Ids of the jobs the ledger lacks (with this config), the first `limit` in the grid's run order."""
    ids = [job_id(*cell) for cell in grid.run_order()]
    pending = [j for j in ids if ledger.current(j, wanted[j]) is None]
    return set(pending if limit is None else pending[:limit])


def provenance() -> dict:
    """What the ledger keeps beside each asset this call records."""
    return {"commit": commit(), "machine": f"{cpu_name()}, {os.cpu_count()} cores", "recorded": time.strftime("%Y-%m-%d")}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    grid = Grid.build(args.quick, args.cases, args.seeds, args.steps, args.variants)
    all_jobs = write_jobs(grid, args.out)
    configs = job_configs(all_jobs, args.overrides)
    wanted = {jid: fingerprint(config) for jid, config in configs.items()}
    ledger = Ledger.open(args.ledger or (args.out / "ledger" if grid.quick else LEDGER))
    pending = to_do(grid, ledger, wanted, args.limit)
    made_by = provenance()  # the package commit and the machine, read before any job of this call runs
    code = 0
    if not args.report_only and pending:
        jobs = write_jobs(grid, args.out, pending, "jobs_to_do.jsonl")
        code = call_forwarding_stops(batch_command(jobs, args.out / "runs", args))
    if code != 0:
        print(f"tv3dg batch exited with {code}; reporting the jobs that finished", file=sys.stderr)
    assets, missing = collect(grid, args.out / "runs", ledger, configs, wanted, made_by)
    ledger.save()
    summary = summary_table(grid, assets)
    results = {
        "command": "python benchmarks/ablation.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": describe_machine() + " at the end",
        "grid": grid.describe(), "overrides": list(args.overrides),
        "summary": summary, "paired": paired_table(grid, assets), "claims": claim_verdicts(assets, summary),
        "terms": term_table(grid, assets), "progress": progress_table(grid, assets),
        "estimate": full_grid_estimate(assets, args.workers), "assets": assets, "missing": missing,
        "ledger": ledger.describe(wanted),
    }
    write_text_atomic(args.out / "results.json", json.dumps(without_nan(results), indent=2, allow_nan=False) + "\n")
    picture = figure(grid, args.out, args.doc.with_suffix(".png"), ledger, wanted)
    write_text_atomic(args.doc, markdown(results, picture.name))
    print(f"{len(assets)} assets done, {len(missing)} missing; wrote {args.out / 'results.json'} and {args.doc}")
    return results


if __name__ == "__main__":
    main()
