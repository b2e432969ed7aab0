"""Is the eye reading right on splats? Gaussians fitted to renders of true world objects, whose
eyes are known, read by the shipped classifier and by the eye finder that reads the Janus rate.

A distilled asset is soft, blotchy and haloed, and the classifier was trained on sphere-traced
renders; `eye_reading_probe.py` imitates that with blur and mottle. Here the imitation is a real
splat: the mini preset's initialisation, optimiser and cameras, fitted to the true object's renders
by a photometric loss for a few steps (few steps: a rough asset). The readings of its 8 metric views
are set against the true object's eyes in the same views.

    python benchmarks/splat_fit_eye_probe.py --objects 16 --steps 50 150 400
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from machine import command_line, describe_machine

from tv3dg.atomic import write_text_atomic
from tv3dg.console import quiet_third_party
from tv3dg.eval.janus import back_views
from tv3dg.export.video import save_image, to_uint8
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.optim import build_optimizer, update_learning_rates
from tv3dg.init.initializers import initial_gaussians
from tv3dg.pipeline.config import GenerateConfig, build_config
from tv3dg.pipeline.outputs import render_view_output, view_cameras
from tv3dg.pipeline.run import WHITE, training_cameras
from tv3dg.priors.mini.architecture import IMAGE_SIZE
from tv3dg.priors.mini.classifier import load_classifier
from tv3dg.priors.mini.evaluate import object_prompt
from tv3dg.priors.mini.eyes import eyes_seen
from tv3dg.priors.mini.world import HIDDEN_EMBLEM_PX, VISIBLE_EMBLEM_PX, WorldObject, random_objects, render_objects
from tv3dg.render.cameras import turntable_azimuths
from tv3dg.render.rasterizer import rasterize



def fit(obj: WorldObject, config: GenerateConfig, steps: int, generator: torch.Generator) -> Gaussians:
    """Gaussians fitted to the object's true renders from the preset's training cameras."""
    gaussians = initial_gaussians(config.init, object_prompt(obj), config.gaussians.sh_degree, generator, torch.device("cpu"), None)
    optimizer = build_optimizer(gaussians, config.gaussians.optim)
    for step in range(steps):
        update_learning_rates(optimizer, config.gaussians.optim, step)
        cameras = training_cameras(config.camera, step, generator, torch.device("cpu"))
        with torch.no_grad():
            truth = render_objects([obj] * len(cameras), cameras).rgb
        loss = F.mse_loss(rasterize(gaussians, cameras, WHITE).rgb.permute(0, 3, 1, 2), truth)  # [B,H,W,C] -> [B,C,H,W]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return gaussians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=16)
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 150, 400])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/splat_fit_eye_probe.json"))
    parser.add_argument("--sheet", type=Path, help="PNG of every fit's 8 views (rows: objects, per step count)")
    args = parser.parse_args()
    quiet_third_party()
    config = build_config("mini", {"prompt": "a cube"}, [])  # the preset; each fit names its own object
    classifier = load_classifier()
    objects = random_objects(args.objects, torch.Generator().manual_seed(args.seed))
    cameras = view_cameras(config.export, IMAGE_SIZE)
    back = back_views(turntable_azimuths(len(cameras)))
    readers = {"classifier": lambda views: classifier.classify(views)["emblem"] == 1, "eye finder": eyes_seen}
    rows, sheet = [], []
    for steps in args.steps:
        counts = {name: {"back_views": 0, "back_read_visible": 0, "front_views_showing_eyes": 0, "front_read_visible": 0}
                  for name in readers}
        for index, obj in enumerate(objects):
            truth = render_objects([obj] * len(cameras), cameras).emblem_pixels()
            gaussians = fit(obj, config, steps, torch.Generator().manual_seed(args.seed + index))
            renders, _ = render_view_output(gaussians.detached_copy("cpu"), config.export, IMAGE_SIZE, WHITE)
            sheet.append(torch.cat(list(renders), dim=2))
            hidden = back & (truth < HIDDEN_EMBLEM_PX)
            showing = truth >= VISIBLE_EMBLEM_PX
            for name, read in readers.items():
                seen = read(renders)
                counts[name]["back_views"] += int(hidden.sum())
                counts[name]["back_read_visible"] += int((seen & hidden).sum())
                counts[name]["front_views_showing_eyes"] += int(showing.sum())
                counts[name]["front_read_visible"] += int((seen & showing).sum())
        for name, c in counts.items():
            rows.append({"steps": steps, "reader": name, **c,
                         "false_eyes_on_back_views": c["back_read_visible"] / max(c["back_views"], 1),
                         "eyes_read_where_they_show": c["front_read_visible"] / max(c["front_views_showing_eyes"], 1)})
            print(json.dumps(rows[-1]), flush=True)
    if args.sheet is not None:
        save_image(args.sheet, to_uint8(torch.cat(sheet, dim=1).permute(1, 2, 0)))
    record = {"command": command_line(__file__), "machine": describe_machine(), "objects": args.objects, "rows": rows}
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
