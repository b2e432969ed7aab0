"""The Janus reading checked against a person's eye, on distilled assets themselves.

The classifier that reads "eyes visible" learnt on clean renders; distilled assets are blurred,
mottled and haloed, and a reading on them is only as good as its agreement with what a person
sees there. `collect` renders the views the pipeline reads (the front and the views from behind)
of kept assets into one atlas of 64-px tiles, in shuffled order so that whoever labels them
cannot tell front from back, nor which loss made them, and writes an enlarged numbered sheet to
label from. A person writes `labels.json` (the tiles where eyes are seen, those they cannot call,
and how they looked); `score` compares two readers with those labels: the classifier, and the
eye finder that the Janus reading uses (`tv3dg.priors.mini.eyes`), on the whole set and on each
half. `sweep` tries the finder's thresholds on the sets' tune halves (even places in the shuffled
atlas), so that a choice made there can be reported on the held-out halves (odd places).
`rates` gives each run's Janus rate by the labels, where the finder misses faint eyes.

    python benchmarks/janus_labels.py collect RUN_DIR... --out benchmarks/results/janus_labels --sheet SHEET_DIR
    python benchmarks/janus_labels.py score --set benchmarks/results/janus_labels [--classifier PATH]
    python benchmarks/janus_labels.py sweep SET... --out SWEEP.json
    python benchmarks/janus_labels.py rates SET... --out RATES.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import asdict
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
from tv3dg.priors.mini.eyes import EYES, EyeThresholds, eyes_seen
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


def agreement_rows(read: list[bool], tiles_info: list[dict], seen: set[int], unsure: set[int],
                   among: list[int] | None = None) -> dict:
    """Per side (front, behind): the reader's eyes against the person's, unsure tiles left out;
    over the tiles `among` (default: all)."""
    among = range(len(tiles_info)) if among is None else among
    rows = {}
    for side in ("front", "behind"):
        on_side = [i for i in among if tiles_info[i]["from_behind"] == (side == "behind")]
        ids = [i for i in on_side if i not in unsure]
        eyes = [i for i in ids if i in seen]
        bare = [i for i in ids if i not in seen]
        rows[side] = {
            "tiles": len(ids), "unsure_left_out": len(on_side) - len(ids), "labelled_eyes": len(eyes),
            "read_eyes_where_labelled_eyes": sum(read[i] for i in eyes), "read_eyes_where_labelled_bare": sum(read[i] for i in bare),
            "agreement": sum(read[i] == (i in seen) for i in ids) / len(ids) if ids else float("nan"),
        }
    return rows


def labelled_set(label_set: Path) -> tuple[torch.Tensor, list[dict], set[int], set[int], str]:
    """(tiles [N, 3, 64, 64], their index entries, tiles with eyes, unsure tiles, how labelled)."""
    tiles_info = json.loads((label_set / "index.json").read_text())["tiles"]
    labels = json.loads((label_set / "labels.json").read_text())
    pixels = np.asarray(Image.open(label_set / "atlas.png").convert("RGB"), dtype=np.float32) / 255
    tiles = from_atlas(torch.from_numpy(pixels).permute(2, 0, 1), len(tiles_info))
    return tiles, tiles_info, set(labels["eyes_visible"]), set(labels["unsure"]), labels["how"]


def split(tiles_info: list[dict], part: str) -> list[int]:
    """The tiles of one half: `tune` (even places in the shuffled atlas) or `held_out` (odd)."""
    return [i for i in range(len(tiles_info)) if i % 2 == (0 if part == "tune" else 1)]


def score(label_set: Path, classifier_path: Path, out: Path | None) -> None:
    tiles, tiles_info, seen, unsure, how = labelled_set(label_set)
    readers = {"classifier": (load_classifier(classifier_path).classify(tiles)["emblem"] == 1).tolist(),
               "eye finder": eyes_seen(tiles).tolist()}
    results = {name: agreement_rows(read, tiles_info, seen, unsure) for name, read in readers.items()}
    for part in ("tune", "held_out"):
        results[f"eye finder, {part} half"] = agreement_rows(readers["eye finder"], tiles_info, seen, unsure, split(tiles_info, part))
    for name, rows in results.items():
        for side, r in rows.items():
            print(f"{name:10s} {side:6s}: {r['tiles']} tiles; eyes by eye {r['labelled_eyes']}, read as eyes "
                  f"{r['read_eyes_where_labelled_eyes']}; bare by eye {r['tiles'] - r['labelled_eyes']}, read as eyes "
                  f"{r['read_eyes_where_labelled_bare']}; agreement {r['agreement']:.2f} ({r['unsure_left_out']} unsure left out)")
    if out is not None:
        write_text_atomic(out, json.dumps({"command": command_line(__file__), "machine": describe_machine(),
                                           "classifier_weights": str(classifier_path), "labelled": how, "readers": results}, indent=1))


SWEEP = {  # the eye finder's thresholds tried by `sweep`; the shipped set is one of the combinations
    "pupil_contrast": (0.04, 0.06, 0.08, 0.1),
    "ring_lighter_min": (8, 9, 10, 11),
    "paler_by": (0.0, 0.02, 0.05),
    "lighter_by": (0.06, 0.09, 0.12),
}


def half_counts(read: torch.Tensor, tiles_info: list[dict], seen: set[int], unsure: set[int], part: str) -> dict:
    """Eyes read where a person saw eyes, and where they saw none (a back or a front), in one half."""
    ids = [i for i in split(tiles_info, part) if i not in unsure]
    eyes = [i for i in ids if i in seen]
    bare = [i for i in ids if i not in seen]
    return {"labelled_eyes": len(eyes), "read_where_eyes": int(read[eyes].sum()) if eyes else 0,
            "labelled_bare": len(bare), "read_where_bare": int(read[bare].sum()) if bare else 0}


def sweep(label_sets: list[Path], out: Path) -> None:
    """Every combination of SWEEP on every set, best first on the tune halves: fewest eyes read on
    bare views, then most read where a person saw eyes. Choose on `tune`; report `held_out`."""
    sets = [labelled_set(path) for path in label_sets]
    rows = []
    for values in itertools.product(*SWEEP.values()):
        thresholds = EyeThresholds(**dict(zip(SWEEP, values)))
        row = {"thresholds": dict(zip(SWEEP, values))}
        for path, (tiles, tiles_info, seen, unsure, _) in zip(label_sets, sets):
            read = eyes_seen(tiles, thresholds)
            row[str(path)] = {part: half_counts(read, tiles_info, seen, unsure, part) for part in ("tune", "held_out")}
        rows.append(row)

    def tune_total(row: dict, key: str) -> int:
        return sum(row[str(path)]["tune"][key] for path in label_sets)

    rows.sort(key=lambda r: (tune_total(r, "read_where_bare"), -tune_total(r, "read_where_eyes")))
    for row in rows[:15]:
        print(row["thresholds"], "tune: eyes", tune_total(row, "read_where_eyes"), "bare", tune_total(row, "read_where_bare"))
    write_text_atomic(out, json.dumps({"command": command_line(__file__), "machine": describe_machine(),
                                       "shipped": asdict(EYES), "rows": rows}, indent=1))


def run_group(asset: str) -> str:
    """The run an asset belongs to: its folder less `seedN/PROMPT`, style cases apart (mini_quality's layout)."""
    path = Path(asset)
    return str(path.parent.parent) + ("/style" if path.name.startswith("style_") else "")


def janus_rates(label_sets: list[Path], out: Path) -> None:
    """Per run, over every labelled set: the Janus rate by a person's eye (back views with eyes
    seen; unsure views counted as bare, then as eyes, so the two bound it), multi-faced assets
    (2 or more such back views), the eye finder's rate on the same views, and the fronts with eyes."""
    groups: dict[str, dict] = {}
    for path in label_sets:
        tiles, tiles_info, seen, unsure, _ = labelled_set(path)
        found = eyes_seen(tiles).tolist()
        per_asset: dict[str, list[int]] = {}
        fronts: dict[str, bool] = {}
        for i, tile in enumerate(tiles_info):
            if tile["from_behind"]:
                per_asset.setdefault(tile["asset"], []).append(i)
            elif tile["azimuth_deg"] == 0:
                fronts[tile["asset"]] = i in seen
        for asset, ids in per_asset.items():
            g = groups.setdefault(run_group(asset), {"assets": 0, "back_views": 0, "eyes": 0, "unsure": 0, "finder": 0,
                                                     "multi_faced": 0, "multi_faced_with_unsure": 0, "fronts_with_eyes": 0})
            g["fronts_with_eyes"] += fronts.get(asset, False)
            eyes, doubtful = sum(i in seen for i in ids), sum(i in unsure for i in ids)
            g["assets"] += 1
            g["back_views"] += len(ids)
            g["eyes"] += eyes
            g["unsure"] += doubtful
            g["finder"] += sum(found[i] for i in ids)
            g["multi_faced"] += eyes >= 2
            g["multi_faced_with_unsure"] += eyes + doubtful >= 2
    for name, g in sorted(groups.items()):
        g["janus_rate_by_eye"] = g["eyes"] / g["back_views"]
        g["janus_rate_by_eye_with_unsure"] = (g["eyes"] + g["unsure"]) / g["back_views"]
        g["janus_rate_eye_finder"] = g["finder"] / g["back_views"]
        print(f"{name}: {g['assets']} assets; back views with eyes by eye {g['eyes']} of {g['back_views']} "
              f"({g['janus_rate_by_eye']:.3f}; with the {g['unsure']} unsure {g['janus_rate_by_eye_with_unsure']:.3f}); "
              f"multi-faced {g['multi_faced']} ({g['multi_faced_with_unsure']} with unsure); eye finder {g['finder']}; "
              f"fronts with eyes by eye {g['fronts_with_eyes']}")
    write_text_atomic(out, json.dumps({"command": command_line(__file__), "machine": describe_machine(),
                                       "label_sets": [str(p) for p in label_sets], "runs": groups}, indent=1))


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
    w = sub.add_parser("sweep", help="try the eye finder's thresholds on the labelled sets' tune halves")
    w.add_argument("label_sets", type=Path, nargs="+")
    w.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("rates", help="the Janus rate per run by a person's labels, beside the eye finder's")
    r.add_argument("label_sets", type=Path, nargs="+")
    r.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "collect":
        collect(args.run_dirs, args.out, args.sheet, args.seed)
    elif args.command == "sweep":
        sweep(args.label_sets, args.out)
    elif args.command == "rates":
        janus_rates(args.label_sets, args.out)
    else:
        score(args.label_set, args.classifier, args.out)


if __name__ == "__main__":
    main()
