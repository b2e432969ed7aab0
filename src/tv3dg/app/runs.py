"""The app's run folders: one new folder per run under `--runs`, who asked for it (with sign-in),
a listing of the finished ones for the gallery, a zip of one for download, and removal of a folder
a failed run left empty."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
import zipfile
from pathlib import Path

from tv3dg.atomic import write_text_atomic

SLUG_LENGTH = 40
OWNER_FILE = "owner.json"  # {"user": name} of a run made by a signed-in user


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
    """Folders under `runs` holding a finished (or stopped) run, newest first (hidden ones, such as
    a run being deleted, are not listed)."""
    if not runs.is_dir():
        return []
    done = [p for p in runs.iterdir()
            if not p.name.startswith(".") and (p / "metrics.json").is_file() and (p / "asset.ply").is_file()]
    return sorted(done, key=lambda p: p.name, reverse=True)


def record_owner(run_dir: Path, user: str) -> None:
    write_text_atomic(run_dir / OWNER_FILE, json.dumps({"user": user}) + "\n")


def owner(run_dir: Path) -> str | None:
    """The signed-in user who made the run; None for a run made without sign-in."""
    path = run_dir / OWNER_FILE
    return json.loads(path.read_text())["user"] if path.is_file() else None


def runs_for(runs: Path, user: str | None) -> list[Path]:
    """The finished runs a user sees, newest first: their own with sign-in, all of them without."""
    done = finished_runs(runs)
    return done if user is None else [p for p in done if owner(p) == user]


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
