"""How often the mini world's classifier reads eyes that are not there: views from behind (no eye in
view) and from the front, clean and degraded the way distilled assets are (blur, low-frequency
mottle), read by the shipped classifier (or `--classifier` weights). The Janus rate is only as
good as this reading.

    python benchmarks/eye_reading_probe.py --out benchmarks/results/eye_reading_probe.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from machine import command_line, describe_machine

from tv3dg.atomic import write_text_atomic
from tv3dg.priors.mini.architecture import IMAGE_SIZE
from tv3dg.priors.mini.classifier import blur, load_classifier
from tv3dg.priors.mini.evaluate import mottle
from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS
from tv3dg.priors.mini.world import PATTERNS, VISIBLE_EMBLEM_PX, random_objects, render_objects
from tv3dg.render.cameras import orbit_cameras


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--classifier", type=Path, default=PACKAGE_WEIGHTS.classifier,
                        help="classifier weights to probe (default: the shipped ones)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/eye_reading_probe.json"))
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(args.seed)
    objects = random_objects(args.objects, generator)
    elevation = torch.rand(args.objects, generator=generator) * 30
    azimuths = {"back": 180 + torch.rand(args.objects, generator=generator) * 90 - 45,
                "front": torch.rand(args.objects, generator=generator) * 60 - 30}
    dotted = torch.tensor([o.pattern == PATTERNS.index("dotted") for o in objects])
    classifier = load_classifier(args.classifier)
    degradations = {
        "clean": lambda x: x,
        "blur 3x3": blur,
        "pixel noise 0.08": lambda x: (x + 0.08 * torch.randn(x.shape, generator=generator)).clamp(0, 1),
        "mottle 0.15": lambda x: mottle(x, 0.15, generator),
        "blur 3x3 + mottle 0.15": lambda x: mottle(blur(x), 0.15, generator),
        "blur 5x5 + mottle 0.25": lambda x: mottle(blur(x, 5), 0.25, generator),
    }
    rows = []
    for side, azimuth in azimuths.items():
        render = render_objects(objects, orbit_cameras(elevation, azimuth, 3.2, 40.0, IMAGE_SIZE))
        truly_visible = float((render.emblem_pixels() >= VISIBLE_EMBLEM_PX).float().mean())
        for name, degrade in degradations.items():
            seen = classifier.classify(degrade(render.rgb))["emblem"] == 1
            rows.append({"side": side, "degradation": name, "eyes_read_visible": float(seen.float().mean()),
                         "dotted_objects_read_visible": float(seen[dotted].float().mean()), "truly_visible": truly_visible})
            print(f"{side:5s} {name:24s} read visible {rows[-1]['eyes_read_visible']:.2f} "
                  f"(dotted {rows[-1]['dotted_objects_read_visible']:.2f}); truly visible {truly_visible:.2f}")
    record = {"command": command_line(__file__), "machine": describe_machine(), "classifier": "shipped" if args.classifier == PACKAGE_WEIGHTS.classifier else str(args.classifier), "objects": args.objects,
              "dotted_objects": int(dotted.sum()), "rows": rows}
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
