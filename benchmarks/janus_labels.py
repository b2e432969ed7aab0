"""The Janus reading checked against a person's eye, on distilled assets themselves.

The classifier that reads "eyes visible" learnt on clean renders; distilled assets are blurred,
mottled and haloed, and a reading on them is only as good as its agreement with what a person
sees there. `collect` renders the views the pipeline reads (the front and the views from behind)
of kept assets into one atlas of 64-px tiles, in shuffled order so that whoever labels them
cannot tell front from back, nor which loss made them, and writes an enlarged numbered sheet to
label from. A person writes `labels.json` (the tiles where eyes are seen, those they cannot call,
and how they looked); `score` compares two readers with those labels: the classifier, and the
eye finder that the Janus reading uses (`tv3dg.priors.mini.eyes`).

    python benchmarks/janus_labels.py collect RUN_DIR... --out benchmarks/results/janus_labels --sheet SHEET_DIR
    python benchmarks/janus_labels.py score --set benchmarks/results/janus_labels [--classifier PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from machine import command_line, describe_machine

from tv3dg.atomic import write_text_atomic
from tv3dg.eval.janus import back_views
from tv3dg.gaussians.ply import load_ply
from tv3dg.export.video import contact_sheet, save_image, to_uint8
from tv3dg.pipeline.config import build_config
from tv3dg.pipeline.outputs import render_view_output
from tv3dg.pipeline.run import WHITE
from tv3dg.priors.mini.architecture import IMAGE_SIZE
from tv3dg.priors.mini.classifier import load_classifier
from tv3dg.priors.mini.eyes import eyes_seen
from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS
from tv3dg.render.cameras import turntable_azimuths

COLUMNS = 16
SHEET_ZOOM = 2
SHEET_COLUMNS = 10
SHEET_TILES = 60


def asset_views(asset_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(rgb [V, 3, 64, 64], azimuth [V]) of the views the pipeline's Janus reading looks at."""
    config = build_config(str(asset_dir / "config.yaml"), {}, [])
    renders, _ = render_view_output(load_ply(asset_dir / "asset.ply"), config.export, IMAGE_SIZE, WHITE)
    azimuth = turntable_azimuths(len(renders))
    keep = back_views(azimuth) | (azimuth == 0)
    return renders[keep], azimuth[keep]


def tile_images(tiles: torch.Tensor) -> list[np.ndarray]:
    """[N, 3, S, S] in [0, 1] -> N uint8 images [S, S, 3]."""
    return list(to_uint8(tiles.permute(0, 2, 3, 1)))


def from_atlas(atlas: torch.Tensor, count: int, size: int = IMAGE_SIZE) -> torch.Tensor:
    """The first `count` tiles [count, 3, S, S] of an atlas [3, rows*S, columns*S]."""
    rows, columns = atlas.shape[1] // size, atlas.shape[2] // size
    tiles = atlas.reshape(3, rows, size, columns, size).permute(1, 3, 0, 2, 4).reshape(rows * columns, 3, size, size)
    return tiles[:count]


def write_sheets(tiles: torch.Tensor, folder: Path) -> None:
    """The tiles enlarged and numbered, SHEET_TILES to a page, for labelling by eye."""
    folder.mkdir(parents=True, exist_ok=True)
    step = IMAGE_SIZE * SHEET_ZOOM
    for page, first in enumerate(range(0, len(tiles), SHEET_TILES)):
        grid = contact_sheet(tile_images(tiles[first:first + SHEET_TILES]), SHEET_COLUMNS, gap=0)
        image = Image.fromarray(grid).resize((grid.shape[1] * SHEET_ZOOM, grid.shape[0] * SHEET_ZOOM), Image.NEAREST)
        draw = ImageDraw.Draw(image)
        for k in range(min(SHEET_TILES, len(tiles) - first)):
            draw.text(((k % SHEET_COLUMNS) * step + 3, (k // SHEET_COLUMNS) * step + 2), str(first + k), fill=(0, 0, 0))
        image.save(folder / f"page_{page:02d}.png")


def collect(run_dirs: list[Path], out: Path, sheet: Path, seed: int) -> None:
    assets = sorted(p.parent for run in run_dirs for p in run.rglob("metrics.json") if (p.parent / "asset.ply").is_file())
    if not assets:
        raise SystemExit(f"no kept assets (metrics.json beside asset.ply) under {', '.join(map(str, run_dirs))}")
    tiles, index = [], []
    for asset in assets:
        renders, azimuth = asset_views(asset)
        tiles.append(renders)
        prompt = json.loads((asset / "metrics.json").read_text())["prompt"]
        index += [{"asset": str(asset), "prompt": prompt, "azimuth_deg": float(a), "from_behind": bool(back_views(a[None]))}
                  for a in azimuth]
        print(f"{asset}: {len(renders)} views")
    order = torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))
    shuffled = torch.cat(tiles)[order]
    out.mkdir(parents=True, exist_ok=True)
    save_image(out / "atlas.png", contact_sheet(tile_images(shuffled), COLUMNS, gap=0))
    write_text_atomic(out / "index.json", json.dumps({"command": command_line(__file__), "machine": describe_machine(),
                                                      "tiles": [index[i] for i in order.tolist()]}, indent=1))
    write_sheets(shuffled, sheet)
    print(f"{len(index)} tiles from {len(assets)} assets -> {out / 'atlas.png'}; label from {sheet}")


def agreement_rows(read: list[bool], tiles_info: list[dict], seen: set[int], unsure: set[int]) -> dict:
    """Per side (front, behind): the reader's eyes against the person's, unsure tiles left out."""
    rows = {}
    for side in ("front", "behind"):
        on_side = [i for i, t in enumerate(tiles_info) if t["from_behind"] == (side == "behind")]
        ids = [i for i in on_side if i not in unsure]
        eyes = [i for i in ids if i in seen]
        bare = [i for i in ids if i not in seen]
        rows[side] = {
            "tiles": len(ids), "unsure_left_out": len(on_side) - len(ids), "labelled_eyes": len(eyes),
            "read_eyes_where_labelled_eyes": sum(read[i] for i in eyes), "read_eyes_where_labelled_bare": sum(read[i] for i in bare),
            "agreement": sum(read[i] == (i in seen) for i in ids) / len(ids) if ids else float("nan"),
        }
    return rows


def score(label_set: Path, classifier_path: Path, out: Path | None) -> None:
    tiles_info = json.loads((label_set / "index.json").read_text())["tiles"]
    labels = json.loads((label_set / "labels.json").read_text())
    seen, unsure = set(labels["eyes_visible"]), set(labels["unsure"])
    pixels = np.asarray(Image.open(label_set / "atlas.png").convert("RGB"), dtype=np.float32) / 255
    tiles = from_atlas(torch.from_numpy(pixels).permute(2, 0, 1), len(tiles_info))
    readers = {"classifier": (load_classifier(classifier_path).classify(tiles)["emblem"] == 1).tolist(),
               "eye finder": eyes_seen(tiles).tolist()}
    results = {name: agreement_rows(read, tiles_info, seen, unsure) for name, read in readers.items()}
    for name, rows in results.items():
        for side, r in rows.items():
            print(f"{name:10s} {side:6s}: {r['tiles']} tiles; eyes by eye {r['labelled_eyes']}, read as eyes "
                  f"{r['read_eyes_where_labelled_eyes']}; bare by eye {r['tiles'] - r['labelled_eyes']}, read as eyes "
                  f"{r['read_eyes_where_labelled_bare']}; agreement {r['agreement']:.2f} ({r['unsure_left_out']} unsure left out)")
    if out is not None:
        write_text_atomic(out, json.dumps({"command": command_line(__file__), "machine": describe_machine(),
                                           "classifier_weights": str(classifier_path), "labelled": labels["how"], "readers": results}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="render kept assets' front and back views into a shuffled atlas")
    c.add_argument("run_dirs", type=Path, nargs="+")
    c.add_argument("--out", type=Path, default=Path("benchmarks/results/janus_labels"))
    c.add_argument("--sheet", type=Path, required=True, help="a folder for the enlarged, numbered pages to label from")
    c.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score", help="compare the classifier's and the eye finder's readings with the labels")
    s.add_argument("--set", type=Path, default=Path("benchmarks/results/janus_labels"), dest="label_set")
    s.add_argument("--classifier", type=Path, default=PACKAGE_WEIGHTS.classifier)
    s.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.command == "collect":
        collect(args.run_dirs, args.out, args.sheet, args.seed)
    else:
        score(args.label_set, args.classifier, args.out)


if __name__ == "__main__":
    main()
