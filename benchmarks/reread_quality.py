"""Read the assets a `mini_quality.py --keep DIR` run left behind again, with today's readers.

The Janus rate is a reading, and a reading can be wrong: when the reader changes (the classifier,
or the eye finder that reads the Janus rate), the assets need not be generated again. Each kept run is restored from its final checkpoint and
measured as `tv3dg generate` measures it; the row keeps the reading the run made at the time.

    python benchmarks/reread_quality.py /tmp/kept --out benchmarks/results/mini_quality_reread.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from machine import command_line, describe_machine
from mini_quality import case_row, summarise

from tv3dg.atomic import write_text_atomic
from tv3dg.console import quiet_third_party
from tv3dg.pipeline.config import build_config
from tv3dg.pipeline.run import Generation
from tv3dg.priors.registry import named_model


def reread(run_dir: Path) -> dict:
    """The run's row as measured now, with the row it had when it ran under 'as_run'."""
    config = build_config(str(run_dir / "config.yaml"), {}, [])
    as_run = json.loads((run_dir / "metrics.json").read_text())
    generation = Generation(config, run_dir, resume=True, progress=False)
    named = named_model(config.prior.model)
    if named is None:
        raise SystemExit(f"'{run_dir}' ran on '{config.prior.model}', which has no world to read it against")
    metrics = {**as_run, **generation.world_measures(named)}
    row = case_row(config, metrics, as_run["time_s"])
    row["as_run"] = {"janus": as_run["janus"], "prompt_accuracy": as_run["attributes"]["prompt"]}
    row["folder"] = str(run_dir)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kept", type=Path, help="the --keep folder of one or more mini_quality runs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    quiet_third_party()
    folders = sorted(path.parent for path in args.kept.rglob("metrics.json"))
    if not folders:
        raise SystemExit(f"no finished runs (metrics.json) under '{args.kept}'; pass the folder given to --keep")
    rows = []
    for folder in folders:
        rows.append(reread(folder))
        before, after = rows[-1]["as_run"]["janus"]["janus_rate"], rows[-1]["janus"]["janus_rate"]
        print(f"{folder}: janus {before:.2f} -> {after:.2f}, prompt {rows[-1]['prompt_accuracy']['all']:.2f}", flush=True)
    losses = sorted({row["loss"] for row in rows})
    summary = {loss: summarise([row for row in rows if row["loss"] == loss]) for loss in losses}
    as_run = {loss: summarise([{**row, **row["as_run"]} for row in rows if row["loss"] == loss]) for loss in losses}
    for loss in losses:
        print(f"{loss}: janus {as_run[loss]['janus_rate']:.2f} -> {summary[loss]['janus_rate']:.2f}, "
              f"multi-faced {as_run[loss]['multi_faced']:.2f} -> {summary[loss]['multi_faced']:.2f}")
    record = {"command": command_line(__file__), "machine": describe_machine(), "summary": summary,
              "summary_as_run": as_run, "runs": rows}
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
