"""The app's run folders: one new folder per run under `--runs`, a listing of the finished ones
for the gallery, a zip of one for download, and removal of a folder a failed run left empty."""

from __future__ import annotations

import re
import secrets
import shutil
import time
import zipfile
from pathlib import Path

SLUG_LENGTH = 40


def slug(text: str) -> str:
    """A file-name-safe, lower-case summary of a prompt ("a red striped cube" -> "a-red-striped-cube")."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:SLUG_LENGTH].rstrip("-") or "run"


def new_run_dir(runs: Path, prompt: str) -> Path:
    """Create and return a fresh folder `YYYYmmdd-HHMMSS-<slug>-<random>`; never an existing one,
    so two runs (in one session or in two) never write into the same place."""
    runs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    while True:
        path = runs / f"{stamp}-{slug(prompt)}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def finished_runs(runs: Path) -> list[Path]:
    """Folders under `runs` holding a finished (or stopped) run, newest first."""
    if not runs.is_dir():
        return []
    done = [p for p in runs.iterdir() if (p / "metrics.json").is_file() and (p / "asset.ply").is_file()]
    return sorted(done, key=lambda p: p.name, reverse=True)


def zip_run(run_dir: Path, target_dir: Path) -> Path:
    """`target_dir/<run name>.zip` holding the run folder (the checkpoint and all outputs)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    archive = target_dir / f"{run_dir.name}.zip"
    partial = archive.with_name(f".{archive.name}.tmp")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
            zf.write(path, Path(run_dir.name) / path.relative_to(run_dir))
    partial.replace(archive)
    return archive


def discard_unfinished(run_dir: Path) -> None:
    """Remove a run folder that holds no asset (the run failed before writing any output)."""
    if run_dir.is_dir() and not (run_dir / "asset.ply").is_file():
        shutil.rmtree(run_dir, ignore_errors=True)
