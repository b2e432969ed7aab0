"""The ablation's ledger: finished assets kept in the repository, so the full grid can be run in
pieces (one night, or several sessions) and every piece adds to the same report.

One JSON line per asset (`assets.jsonl`: its metrics, the config fingerprint it ran with, the
commit and the machine) and a front and a back view per first-seed asset, side by side
(`views/ID.FINGERPRINT.png`, for the figure: eyes on the back are Janus). The first world's
ledger kept front views only (`front/`).
Entries are keyed by job id and config fingerprint, and an entry counts only for a job whose
config has that fingerprint now: change the preset, a variant, a case or the steps, and the old
entries stay in the file but are not used (the report counts them as stale) instead of being
mixed with new ones.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from tv3dg.atomic import write_text_atomic
from tv3dg.batch.jobs import load_jobs
from tv3dg.config import dump_yaml
from tv3dg.export.video import to_uint8
from tv3dg.gaussians.ply import load_ply
from tv3dg.pipeline.config import GenerateConfig
from tv3dg.render.cameras import turntable_cameras
from tv3dg.render.rasterizer import rasterize

ASSETS = "assets.jsonl"
VIEWS = "views"
CELL = 64  # each view's size in the figure
PROVENANCE = ("fingerprint", "commit", "machine", "recorded")  # what the ledger adds to an asset's row


def front_and_back(asset: Path) -> np.ndarray:
    """The asset from the front and from behind (azimuths 0 and 180, elevation 15, the metric views'
    orbit), side by side on white: [CELL, 2 * CELL, 3]."""
    cameras = turntable_cameras(2, 15.0, 3.2, 40.0, CELL)
    with torch.no_grad():
        rgb = rasterize(load_ply(asset), cameras, torch.ones(3)).rgb
    return np.concatenate([to_uint8(view) for view in rgb], axis=1)


def fingerprint(config: GenerateConfig) -> str:
    """A hash of the resolved config, with the visual prompt's path replaced by a hash of its bytes
    (the same image in another working folder is the same job)."""
    if config.image is not None:
        config = replace(config, image="sha256:" + hashlib.sha256(Path(config.image).read_bytes()).hexdigest())
    return hashlib.sha256(dump_yaml(config).encode()).hexdigest()[:16]


def job_configs(jobs_file: Path, overrides: Sequence[str] = ()) -> dict[str, GenerateConfig]:
    """Job id -> its config as `tv3dg batch JOBS overrides` resolves it."""
    return {job.id: job.config for job in load_jobs(jobs_file, overrides)}


def commit() -> str:
    """The checkout's commit, with "+dirty" when the package (src/) has uncommitted changes, or "unknown"."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"], cwd=root,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def without_nan(value: object) -> object:
    """`value` with every float NaN (a measure that could not be taken) as None, so the JSON written
    is standard JSON (jq, JavaScript) rather than Python's NaN extension."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(v) for v in value]
    return value


def key(job: str, fingerprint: str) -> str:
    """An entry's key and file stem: the same job run with another config is another entry."""
    return f"{job}.{fingerprint}"


def read_entries(folder: Path) -> dict[str, dict]:
    """key(id, fingerprint) -> entry, as assets.jsonl holds them now (None read back as NaN)."""
    entries = {}
    path = folder / ASSETS
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = {k: float("nan") if v is None else v for k, v in json.loads(line).items()}
                entries[key(entry["id"], entry["fingerprint"])] = entry
    return entries


@dataclass
class Ledger:
    folder: Path
    entries: dict[str, dict] = field(default_factory=dict)  # key(id, fingerprint) -> asset row + provenance
    recorded: set[str] = field(default_factory=set)  # keys this process recorded (what `save` writes over the file)

    @classmethod
    def open(cls, folder: Path) -> "Ledger":
        return cls(folder, read_entries(folder))

    def current(self, job: str, fingerprint: str) -> dict | None:
        """The asset row of `job` run with this config, or None."""
        entry = self.entries.get(key(job, fingerprint))
        return None if entry is None else {k: v for k, v in entry.items() if k not in PROVENANCE}

    def stale(self, wanted: dict[str, str]) -> list[str]:
        """Jobs of `wanted` that the ledger holds only for other configs."""
        held = {entry["id"] for entry in self.entries.values()}
        return sorted(j for j, f in wanted.items() if j in held and key(j, f) not in self.entries)

    def views(self, job: str, fingerprint: str) -> Path | None:
        path = self.folder / VIEWS / f"{key(job, fingerprint)}.png"
        return path if path.exists() else None

    def record(self, asset: dict, fingerprint: str, provenance: dict, views: Image.Image | None) -> None:
        """Add or replace one asset (kept in memory until `save`) and write its front and back views."""
        self.entries[key(asset["id"], fingerprint)] = {**asset, "fingerprint": fingerprint, **provenance}
        self.recorded.add(key(asset["id"], fingerprint))
        if views is not None:
            (self.folder / VIEWS).mkdir(parents=True, exist_ok=True)
            views.save(self.folder / VIEWS / f"{key(asset['id'], fingerprint)}.png", optimize=True)

    def describe(self, wanted: dict[str, str]) -> dict:
        """For the report: where the ledger is, which commits and machines its entries for this grid come
        from, and which of the grid's jobs it holds only for other configs."""
        current = [self.entries[key(j, f)] for j, f in wanted.items() if key(j, f) in self.entries]
        folder = self.folder.resolve()
        shown = folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder
        return {"folder": str(shown), "current": len(current),
                "commits": sorted({e["commit"] for e in current}), "machines": sorted({e["machine"] for e in current}),
                "stale": self.stale(wanted)}

    def save(self) -> None:
        """Add this process's entries to assets.jsonl as it is now, rewritten whole (atomically) in a
        stable order: a piece that ran for hours keeps what another process saved meanwhile."""
        self.entries = {**read_entries(self.folder), **{k: self.entries[k] for k in self.recorded}}
        lines = [json.dumps(without_nan(self.entries[k]), sort_keys=True, allow_nan=False) for k in sorted(self.entries)]
        write_text_atomic(self.folder / ASSETS, "\n".join(lines) + ("\n" if lines else ""))
