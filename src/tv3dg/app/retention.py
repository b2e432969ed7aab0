"""How many finished runs the app keeps: `--keep-runs N` and/or `--max-runs-gb X`.

Applied each time a run finishes. Only finished (or stopped) runs are ever deleted, oldest first by
the time they finished, and never the run that just finished; a running run is not finished (its
metrics.json is written last) and a queued one has no folder yet, so neither can be touched.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tv3dg.app.runs import finished_runs
from tv3dg.errors import UserError

GB = 1e9


@dataclass(frozen=True)
class Retention:
    """None: no bound of that kind (the default keeps every run)."""

    keep_runs: int | None = None
    max_bytes: int | None = None

    @classmethod
    def from_command_line(cls, keep_runs: int | None, max_runs_gb: float | None) -> "Retention":
        if keep_runs is not None and keep_runs < 1:
            raise UserError(f"--keep-runs must be at least 1, got {keep_runs}")
        if max_runs_gb is not None and not max_runs_gb > 0:
            raise UserError(f"--max-runs-gb must be above 0, got {max_runs_gb}")
        return cls(keep_runs, None if max_runs_gb is None else int(max_runs_gb * GB))

    def prune(self, runs: Path, just_finished: Path) -> list[Path]:
        """Delete the oldest finished runs under `runs` until both bounds hold (or only
        `just_finished` is left to delete); returns the folders deleted."""
        if self.keep_runs is None and self.max_bytes is None:
            return []
        done = sorted(finished_runs(runs), key=lambda p: ((p / "metrics.json").stat().st_mtime, p.name))
        kept = len(done)
        used = sum(folder_bytes(p) for p in runs.iterdir() if p.is_dir()) if self.max_bytes is not None else 0
        deleted = []
        for run_dir in (p for p in done if p != just_finished):
            over_count = self.keep_runs is not None and kept > self.keep_runs
            over_size = self.max_bytes is not None and used > self.max_bytes
            if not (over_count or over_size):
                break
            size = folder_bytes(run_dir)
            if delete_run(run_dir):
                deleted.append(run_dir)
                kept -= 1
                used -= size
        return deleted


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def delete_run(run_dir: Path) -> bool:
    """Move the folder out of sight first (one rename, so the gallery never lists half a run), then
    remove it. False when another app process sharing `--runs` deleted it first."""
    hidden = run_dir.with_name(f".deleting-{run_dir.name}")
    try:
        os.rename(run_dir, hidden)
    except FileNotFoundError:
        return False
    shutil.rmtree(hidden)
    return True
