"""What a batch leaves beside its job folders: index.jsonl, index.csv and contact_sheet.png."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tv3dg.atomic import write_text_atomic
from tv3dg.batch.jobs import Job
from tv3dg.batch.task import JobOutcome
from tv3dg.export.video import contact_sheet, save_image

COLUMNS = ("id", "prompt", "status", "reason", "time_s", "unet_calls", "num_gaussians", "attributes", "tags", "out",
           "skipped", "resumed_from", "wall_s", "node")
RATE_BLOCKS = ("prompt", "visual_prompt")  # the accuracy blocks of metrics["attributes"] spread over CSV columns
TILE = 160
LABEL_HEIGHT = 34


def make_row(job: Job, outcome: JobOutcome, out_dir: Path) -> dict:
    """One index row: the job, its status and, when done, the numbers from its metrics.json."""
    metrics = outcome.metrics or {}
    return {
        "id": job.id, "prompt": job.prompt, "status": outcome.status, "reason": outcome.reason,
        "time_s": metrics.get("time_s"), "unet_calls": metrics.get("unet", {}).get("calls"),
        "num_gaussians": metrics.get("num_gaussians"), "attributes": metrics.get("attributes"),
        "tags": job.tags, "out": str(out_dir / job.id), "skipped": outcome.skipped,
        "resumed_from": outcome.resumed_from, "wall_s": round(outcome.wall_s, 3), "node": outcome.node,
    }


def write_index(out_dir: Path, rows: Sequence[dict]) -> None:
    """index.jsonl (rows as they are) and index.csv (nested values spread out or as JSON)."""
    write_text_atomic(out_dir / "index.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    rate_columns = sorted({f"attributes.{block}.{key}" for row in rows for block, rates in _rate_blocks(row)
                           for key in rates})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[c for c in COLUMNS if c != "attributes"] + rate_columns,
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in row.items() if k != "attributes"}
        flat.update({f"attributes.{block}.{key}": value for block, rates in _rate_blocks(row) for key, value in rates.items()})
        writer.writerow(flat)
    write_text_atomic(out_dir / "index.csv", buffer.getvalue())


def _rate_blocks(row: dict) -> list[tuple[str, dict]]:
    attributes = row.get("attributes") or {}
    return [(block, attributes[block]) for block in RATE_BLOCKS if isinstance(attributes.get(block), dict)]


def write_contact_sheet(out_dir: Path, rows: Sequence[dict], views: Sequence[np.ndarray | None]) -> Path:
    """contact_sheet.png: each job's front view (grey for a failed job) above its prompt."""
    tiles = [_tile(view, row) for view, row in zip(views, rows)]
    return save_image(out_dir / "contact_sheet.png", contact_sheet(tiles, columns=min(6, len(tiles))))


def _tile(view: np.ndarray | None, row: dict) -> np.ndarray:
    tile = Image.new("RGB", (TILE, TILE + LABEL_HEIGHT), "white")
    if view is None:
        tile.paste((215, 215, 215), (0, 0, TILE, TILE))
    else:
        tile.paste(Image.fromarray(view).resize((TILE, TILE), Image.Resampling.BICUBIC))
    draw = ImageDraw.Draw(tile)
    font = ImageFont.load_default()
    lines = textwrap.wrap(row["prompt"], width=26, max_lines=2, placeholder="…")
    if row["status"] != "done":
        lines = ["FAILED", *lines][:2]
    draw.multiline_text((4, TILE + 2), "\n".join(lines), fill=(0, 0, 0) if view is not None else (160, 0, 0), font=font)
    return np.asarray(tile)
