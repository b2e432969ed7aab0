"""Quality of `tv3dg generate` on the bundled mini prior: 8-view attribute accuracy, Janus and colour per loss.

Text-only prompts are scored against the attributes they name; style cases (the text names a
shape, the visual prompt shows a different object) are scored on shape-from-text,
colour/pattern-from-image, and both at once in the same view. Every asset is also read for
fronts seen from behind (the Janus rate of its 3 back views, and whether it is multi-faced) and,
for text prompts that name a whole object, for its colour against the true object's. Usage:

    python benchmarks/mini_quality.py --losses vpcsm csm sds --seeds 3 --out benchmarks/results/mini_quality.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from machine import command_line, describe_machine

from tv3dg.atomic import write_text_atomic
from tv3dg.distill.objectives import LOSS_NAMES
from tv3dg.pipeline.config import GenerateConfig, build_config
from tv3dg.pipeline.run import generate
from tv3dg.priors.mini.world import COLOUR_NAMES, PATTERNS, SHAPES, WorldObject, render_objects
from tv3dg.render.cameras import orbit_cameras

TEXT_PROMPTS = (  # plain and free phrasings, every pattern
    "a red striped cube",
    "a blue checkered sphere",
    "a small green dotted cylinder",
    "a purple torus with thin stripes",
    "a photo of a yellow plain cone",
    "a shiny orange checkered capsule",
    "a brown striped egg on the ground",
    "a grey dotted octahedron",
)
STYLE_CASES = (  # (text, (shape, colour, pattern) of the visual prompt's object)
    ("a cube", ("sphere", "blue", "checkered")),
    ("a torus", ("cube", "yellow", "striped")),
    ("a cone", ("cylinder", "pink", "checkered")),
    ("a prism", ("torus", "green", "striped")),
    ("a sphere", ("pyramid", "orange", "dotted")),
    ("a pyramid", ("egg", "cyan", "plain")),
    ("an egg", ("capsule", "red", "pinstriped")),
    ("a capsule", ("octahedron", "grey", "dotted")),
)


def world_image(shape: str, colour: str, pattern: str, path: Path, size: int = 64) -> Path:
    """A front-ish view of a world object, saved as an 8-bit RGB PNG (a visual prompt)."""
    obj = WorldObject(SHAPES.index(shape), COLOUR_NAMES.index(colour), PATTERNS.index(pattern))
    render = render_objects([obj], orbit_cameras(20.0, 30.0, 3.2, 40.0, size))
    pixels = (render.rgb[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def run_case(prompt: str, loss: str, seed: int, out: Path, image: Path | None, overrides: list[str]) -> dict:
    updates = {"prompt": prompt, "seed": seed, "distill": {"loss": loss}}
    if image is not None:
        updates.update(image=str(image), prior={"ip_mode": "style"})
    config = build_config("mini", updates, overrides)
    started = time.perf_counter()
    metrics = generate(config, out, progress=False).metrics
    return case_row(config, metrics, time.perf_counter() - started)


def case_row(config: GenerateConfig, metrics: dict, seconds: float) -> dict:
    """One asset's row: its readings against the prompt (and the visual prompt), Janus, colour."""
    attributes = metrics["attributes"]
    row = {"prompt": config.prompt, "loss": config.distill.loss, "seed": config.seed, "seconds": seconds,
           "prompt_accuracy": attributes["prompt"], "janus": metrics["janus"]}
    if "colour" in metrics:
        row["colour"] = metrics["colour"]
    if config.image is not None:
        row["image_accuracy"] = attributes["visual_prompt"]
        row["style_accuracy"] = style_accuracy(attributes)
    return row


def style_accuracy(attributes: dict) -> float:
    """Share of views with the text's shape and the visual prompt's colour and pattern at once."""
    predicted, text, image = attributes["predicted"], attributes["prompt_target"], attributes["visual_prompt_target"]
    views = range(len(predicted["shape"]))
    return sum(
        predicted["shape"][v] == text["shape"] and all(predicted[k][v] == image[k] for k in ("colour", "pattern")) for v in views
    ) / len(views)


def mean(rows: list[dict], key: str, attr: str) -> float:
    values = [float(r[key][attr]) for r in rows if attr in r.get(key, {})]
    return float(np.mean(values)) if values else float("nan")


def summarise(rows: list[dict]) -> dict:
    """The means of one loss's rows."""
    text = [r for r in rows if "image_accuracy" not in r]
    style = [r for r in rows if "image_accuracy" in r]
    return {
        "text_all": mean(text, "prompt_accuracy", "all"),
        "text_shape": mean(text, "prompt_accuracy", "shape"),
        "text_colour": mean(text, "prompt_accuracy", "colour"),
        "text_pattern": mean(text, "prompt_accuracy", "pattern"),
        "style_shape_from_text": mean(style, "prompt_accuracy", "shape"),
        "style_appearance_from_image": mean(style, "image_accuracy", "all"),
        "style_all": float(np.mean([r["style_accuracy"] for r in style])) if style else float("nan"),
        "janus_rate": mean(rows, "janus", "janus_rate"),
        "multi_faced": mean(rows, "janus", "multi_faced"),
        "colour_error": mean(text, "colour", "colour_error"),
        "saturation_excess": mean(text, "colour", "saturation_excess"),
        "seconds_per_asset": float(np.mean([r["seconds"] for r in rows])),
        "assets": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", choices=LOSS_NAMES, default=["vpcsm", "csm", "sds"])
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds of every case")
    parser.add_argument("--first-seed", type=int, default=0, help="the seeds run are K..K+N-1 (a later piece of a longer run)")
    parser.add_argument("--cases", nargs="+", choices=("text", "style"), default=["text", "style"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mini_quality.json"))
    parser.add_argument("--keep", type=Path, help="keep each run's output folder under this directory")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run, e.g. steps=300")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tv3dg-quality-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    cases = [(prompt, None) for prompt in TEXT_PROMPTS] if "text" in args.cases else []
    if "style" in args.cases:
        cases += [(text, world_image(*shown, root / f"{'_'.join(shown)}.png")) for text, shown in STYLE_CASES]
    rows = []
    for loss in args.losses:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for prompt, image in cases:
                folder = ("style_" if image is not None else "") + prompt.replace(" ", "_")
                rows.append(run_case(prompt, loss, seed, root / loss / f"seed{seed}" / folder, image, args.overrides))
                print(json.dumps(rows[-1]), flush=True)
    summary = {loss: summarise([r for r in rows if r["loss"] == loss]) for loss in args.losses}
    print("\nloss   | text all | shape | colour | pattern | style: shape<-text | look<-image | both | janus | multi-faced | colour err | s/asset")
    for loss, s in summary.items():
        print(f"{loss:6s} | {s['text_all']:.2f}     | {s['text_shape']:.2f}  | {s['text_colour']:.2f}   | "
              f"{s['text_pattern']:.2f}    | {s['style_shape_from_text']:.2f}              | "
              f"{s['style_appearance_from_image']:.2f}        | {s['style_all']:.2f} | {s['janus_rate']:.2f}  | "
              f"{s['multi_faced']:.2f}        | {s['colour_error']:.3f}      | {s['seconds_per_asset']:.0f}")
    record = {"command": command_line(__file__), "machine": describe_machine() + " at the end", "summary": summary,
              "runs": rows, "overrides": args.overrides}
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
