"""From finished `tv3dg batch` runs to numbers: per-asset metrics, per-variant summaries, paired
comparisons against the default, the four claims, cost and the full grid's wall-time estimate."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from ablation_grid import DEFAULT, FULL_STEPS, Grid, all_cases, job_id
from ablation_ledger import Ledger, front_and_back
from ablation_stats import MIN_CASES, paired, summarise
from mini_quality import style_accuracy

from tv3dg.batch.task import finished_metrics
from tv3dg.errors import UserError
from tv3dg.eval.consistency import front_back_flip, view_agreement
from tv3dg.eval.floaters import BODY_ALPHA, floater_report, held_out_cameras
from tv3dg.gaussians.ply import load_ply
from tv3dg.pipeline.config import GenerateConfig
from tv3dg.priors.mini.world import SHAPES, WorldObject, render_objects
from tv3dg.render.cameras import Cameras

# name: (case kinds it is scored on, True if higher is better, what it is)
METRICS = {
    "text": (("text",), True, "text accuracy: share of the 8 views showing every attribute the text names (text-only cases)"),
    "prompt_all": (("text", "style", "texture"), True, "the text kept, on every case: share of the 8 views showing every "
                   "attribute the text names (on style and texture cases, its shape)"),
    "style_all": (("style",), True, "style all-three: views with the text's shape and the image's colour and pattern (style cases)"),
    "texture_all": (("texture",), True, "texture all-three: views whose shape, colour and pattern all follow (texture cases)"),
    "agreement": (("text", "style", "texture"), True, "share of the 8 views whose full reading equals the most common one"),
    "flip": (("text", "style", "texture"), False, "share of assets whose reading differs between the front and the back view"),
    "floaters": (("text", "style", "texture"), False, "alpha mass > 3 px from the asset's own main body, held-out views"),
    "outside_shape": (("text", "style", "texture"), False, "alpha mass > 3 px from the world silhouette of the text's shape"),
    "holes": (("text", "style", "texture"), False, "share of that silhouette, 3 px in from its edge, left see-through"),
    "janus_rate": (("text", "style", "texture"), False, "share of the 3 back views (beyond 120 deg) in which the classifier "
                   "reads the eyes: a front seen from behind (the reading is not yet validated on distilled assets)"),
    "multi_faced": (("text", "style", "texture"), False, "share of assets with the eyes read in 2 or more back views"),
    "colour_error": (("text",), False, "RGB distance of the asset's mean colour from the true object's, same cameras"),
    "seconds": (("text", "style", "texture"), False, "seconds of optimisation per asset (the generate loop)"),
    "unet_calls": (("text", "style", "texture"), False, "UNet calls per asset"),
}


# The guidance terms' sizes as metrics.json logs them (rms, mean of the run's last steps): they show
# why a variant does or does not change the asset (e.g. a PAG term far smaller than the classifier term).
TERMS = {"classifier_rms": "classifier term", "difference_rms": "difference term", "pag_rms": "PAG term",
         "grad_rms": "update (gradient)"}


def shape_silhouette(shape: str, cameras: Cameras) -> torch.Tensor:
    """The mini world's silhouette [V,H,W] of `shape` (any colour: the world has one size and pose)."""
    objects = [WorldObject(SHAPES.index(shape), 0, 0)] * len(cameras)
    return render_objects(objects, cameras).alpha[:, 0] > BODY_ALPHA


def asset_metrics(folder: Path, kind: str, row: dict) -> dict[str, float]:
    """Every metric of one finished asset folder (metrics.json + asset.ply) and its index row.

    `seconds` is the optimisation loop's time, which survives resumes (checkpoints carry it);
    `overhead` (loading, reference views, export) only comes from a job run start to end in one go.
    """
    metrics = json.loads((folder / "metrics.json").read_text())
    attributes = metrics["attributes"]
    predicted = attributes["predicted"]
    whole_run = not row.get("skipped") and not row.get("resumed_from") and row.get("wall_s") is not None
    result = {"agreement": view_agreement(predicted), "flip": float(front_back_flip(predicted)),
              "seconds": float(metrics["time_s"]), "seconds_per_step": float(metrics["seconds_per_step"]),
              "overhead": float(row["wall_s"] - metrics["time_s"]) if whole_run else float("nan"),
              "unet_calls": float(metrics["unet"]["calls"])}
    result.update({term: float(metrics["losses"][term]) for term in TERMS if term in metrics["losses"]})
    result["prompt_all"] = attributes["prompt"]["all"]
    result["janus_rate"] = float(metrics["janus"]["janus_rate"])
    result["multi_faced"] = float(metrics["janus"]["multi_faced"])
    if "colour" in metrics:  # the prompt names a whole object of the world
        result["colour_error"] = float(metrics["colour"]["colour_error"])
    if kind == "text":
        result["text"] = attributes["prompt"]["all"]
    else:
        result[f"{kind}_all"] = style_accuracy(attributes)
    cameras = held_out_cameras()
    shape = attributes["prompt_target"].get("shape")
    silhouette = shape_silhouette(shape, cameras) if shape else None
    floaters = floater_report(load_ply(folder / "asset.ply"), cameras, silhouette)
    result.update({k: v for k, v in floaters.items() if k != "margin_px"})
    return result


def read_index(runs: Path) -> dict[str, dict]:
    """The last index row of each job (a rerun may append rows)."""
    rows = {}
    index = runs / "index.jsonl"
    if index.exists():
        for line in index.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    return rows


def collect(grid: Grid, runs: Path, ledger: Ledger, configs: dict[str, GenerateConfig], wanted: dict[str, str],
            provenance: dict) -> tuple[list[dict], list[dict]]:
    """Per-asset rows of the grid's finished jobs, and the jobs that failed, never ran or ran another config.

    `wanted` holds each job's config fingerprint. A job the ledger holds with it is taken from
    there; one whose run in `runs` has finished with that config (as `tv3dg batch` judges it, so
    also while a batch is still running or after one was killed) is measured and recorded in the
    ledger, with its front view when it has the grid's first seed.
    """
    index = read_index(runs)
    done, missing = [], []
    for variant, case, seed in grid.cells():
        jid = job_id(variant, case, seed)
        expected = wanted[jid]
        recorded = ledger.current(jid, expected)
        if recorded is not None:
            done.append(recorded)
            continue
        row, folder = index.get(jid, {}), runs / jid
        try:
            finished = finished_metrics(folder, configs[jid]) is not None
        except UserError as err:
            missing.append({"id": jid, "status": "ran another config", "reason": str(err)})
            continue
        if not finished:
            missing.append({"id": jid, "status": row.get("status", "not run"), "reason": row.get("reason")})
            continue
        asset = {"id": jid, "variant": variant.name, "case": case.id, "kind": case.kind, "seed": seed,
                 **asset_metrics(folder, case.kind, row)}
        views = Image.fromarray(front_and_back(folder / "asset.ply")) if seed == grid.seeds[0] else None
        ledger.record(asset, expected, provenance, views)
        done.append(asset)
    return done, missing


def metric_values(assets: list[dict], variant: str, metric: str) -> dict[tuple[str, int], float]:
    kinds = METRICS[metric][0]
    return {(a["case"], a["seed"]): a[metric] for a in assets
            if a["variant"] == variant and a["kind"] in kinds and metric in a}


def summary_table(grid: Grid, assets: list[dict]) -> dict:
    return {v.name: {m: summarise(metric_values(assets, v.name, m)) for m in METRICS} for v in grid.variants}


def term_table(grid: Grid, assets: list[dict]) -> dict[str, dict[str, float]]:
    """Per variant, the mean size of each guidance term it logs (terms it has not: left out)."""
    table = {}
    for variant in grid.variants:
        rows = [a for a in assets if a["variant"] == variant.name]
        table[variant.name] = {t: float(np.mean([a[t] for a in rows if t in a])) for t in TERMS if any(t in a for a in rows)}
    return table


def progress_table(grid: Grid, assets: list[dict]) -> dict[str, dict[int, tuple[int, int]]]:
    """Per variant and seed: (jobs done, jobs in the grid)."""
    done = Counter((a["variant"], a["seed"]) for a in assets)
    total = Counter((v.name, seed) for v, _case, seed in grid.cells())
    return {v.name: {seed: (done[v.name, seed], total[v.name, seed]) for seed in grid.seeds} for v in grid.variants}


def paired_table(grid: Grid, assets: list[dict]) -> dict:
    """Each variant minus the default, per metric, on the same cases and seeds."""
    return {v.name: {m: paired(metric_values(assets, v.name, m), metric_values(assets, DEFAULT, m)) for m in METRICS
                     if m not in ("seconds", "unet_calls")}
            for v in grid.variants if v.name != DEFAULT}


CLAIMS = (
    # csd keeps the classifier term but draws random noise: against it, csm shows what the inverted noise alone does.
    ("csm_vs_sds", "Dropping SDS's difference term and random noise (CSM) gives cleaner, better-aligned results than SDS",
     (("csm", "sds"), ("csm", "sds_cfg100"), ("csm", "csd")),
     ("text", "prompt_all", "style_all", "texture_all", "floaters", "colour_error")),
    ("visual_prompt", "VPCSM takes the visual prompt's look (texture and style alignment) while the text keeps the subject",
     (("vpcsm", "vpcsm_texture_fusion"),), ("style_all",)),
    ("pag", "PAG helps", (("vpcsm", "csm"), ("vpcsm_pag5", "csm")), ("text", "prompt_all", "style_all", "texture_all", "floaters")),
    ("sgc", "SGC improves text alignment and geometry", (("vpcsm", "vpcsm_no_sgc"),),
     ("text", "prompt_all", "agreement", "flip", "floaters", "outside_shape", "holes", "janus_rate", "multi_faced")),
)
MAJORITY = 0.5  # the visual-prompt claim: most views must show the text's shape with the image's look


def claim_verdicts(assets: list[dict], summary: dict) -> list[dict]:
    """For each claim: the comparisons behind it, and holds / does not hold.

    A comparison favours the claim when its 95% interval excludes zero in the better direction.
    A claim holds when at least one comparison favours it and none goes significantly against it;
    the visual-prompt claim also needs the default's style and texture all-three intervals above 0.5.
    """
    verdicts = []
    too_few = f"too few cases to tell: fewer than {MIN_CASES}"
    for key, text, pairs, metrics in CLAIMS:
        comparisons = []
        for a, b in pairs:
            for metric in metrics:
                diff = paired(metric_values(assets, a, metric), metric_values(assets, b, metric))
                if diff["n"] == 0:
                    continue
                better = METRICS[metric][1]
                favour = {"+": better, "-": not better}.get(diff["sign"])
                comparisons.append({"a": a, "b": b, "metric": metric, **diff,
                                    "reading": too_few if diff["cases"] < MIN_CASES else
                                    "no difference" if favour is None else ("for" if favour else "against")})
        readings = [c["reading"] for c in comparisons]
        holds = "for" in readings and "against" not in readings
        absolute = []
        if key == "visual_prompt" and DEFAULT in summary:
            for metric in ("style_all", "texture_all"):
                s = summary[DEFAULT][metric]
                absolute.append({"metric": metric, "mean": s["mean"], "ci95": s["ci95"], "threshold": MAJORITY,
                                 "above": bool(s["ci95"][0] > MAJORITY)})
            holds = all(x["above"] for x in absolute) and "against" not in readings
        verdicts.append({"key": key, "claim": text, "holds": bool(holds and comparisons), "comparisons": comparisons,
                         "absolute": absolute, "variants": list(dict.fromkeys(v for pair in pairs for v in pair)),
                         "per_baseline": {pair_label(a, b, pairs): pair_reading([c["reading"] for c in comparisons if (c["a"], c["b"]) == (a, b)])
                                          for a, b in pairs}})
    return verdicts


def pair_label(a: str, b: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """The baseline's name, or 'a vs b' where the claim compares two variants with the same baseline
    (PAG at 1 and at 5, each against csm)."""
    return b if sum(other == b for _, other in pairs) == 1 else f"{a} vs {b}"


def pair_reading(readings: list[str]) -> str:
    """One comparison pair's verdict from the readings of its metrics, by the rule of the whole claim."""
    if "against" in readings:
        return "does not hold"
    if "for" in readings:
        return "holds"
    if "no difference" in readings:
        return "no difference"
    return readings[0] if readings else "not compared"  # too few cases to tell


def full_grid_estimate(assets: list[dict], workers: int) -> dict:
    """Wall time of the full grid (FULL_STEPS steps, every case and seed) from the measured assets:
    per variant, measured seconds per step x FULL_STEPS plus the mean measured per-asset overhead
    (job wall time minus loop time: model loading, reference views, export, over all variants)."""
    full = Grid.build(quick=False)
    per_variant = {}
    total = 0.0
    overheads = [a["overhead"] for a in assets if a["overhead"] == a["overhead"]]
    overhead = float(np.mean(overheads)) if overheads else 0.0  # unknown when every piece was stopped, not finished
    for variant in full.variants:
        measured = [a for a in assets if a["variant"] == variant.name]
        if not measured:
            continue
        seconds = float(np.mean([a["seconds_per_step"] for a in measured])) * FULL_STEPS + overhead
        jobs = sum(1 for v, _, _ in full.cells() if v.name == variant.name)
        per_variant[variant.name] = {"seconds_per_asset": seconds, "jobs": jobs}
        total += seconds * jobs
    complete = len(per_variant) == len(full.variants)
    return {"jobs": len(full.cells()), "cases": len(all_cases()), "seeds": len(full.seeds), "steps": FULL_STEPS,
            "workers": workers, "overhead_s": overhead, "overhead_measured": bool(overheads),
            "per_variant": per_variant, "complete": complete,
            "hours": total / workers / 3600 if complete else float("nan")}
