"""The worked examples of the README and the docs (examples, generate, playground): render the
example visual prompts, run the example commands and compose `docs/*.png`.

    python benchmarks/readme_figures.py                # all figures, about 10 minutes on a 2-core CPU
    python benchmarks/readme_figures.py examples       # only examples/*.png, the visual prompts (seconds)
    python benchmarks/readme_figures.py playground     # only docs/playground.png, about 1 minute

The 3D figures are the visual prompt (left, enlarged) beside the run's `views.png` (8 views).
The playground figure is one `tv3dg 2d` strip per loss, SDS above VPCSM (the paper's Figure 3).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mini_quality import world_image
from PIL import Image, ImageDraw

from tv3dg.cli import main

EXAMPLES = {  # examples/NAME.png: a world object as a visual prompt (shape, colour, pattern)
    "yellow_striped_cube": ("cube", "yellow", "striped"),
    "blue_checkered_sphere": ("sphere", "blue", "checkered"),
}

RUNS = {
    "demo": ["--prompt", "a red striped cube"],
    "style_torus": ["--prompt", "a torus", "--image", "examples/yellow_striped_cube.png", "--mode", "style"],
}


PLAYGROUND = ["2d", "--prompt", "a torus", "--image", "examples/yellow_striped_cube.png", "--ip-mode", "style", "--ip-scale", "0.5",
              "--seed", "1"]
PLAYGROUND_ROWS = {  # label -> the loss's own flags; everything else is the mini preset's distill section
    "SDS, CFG 100": ["--loss", "sds", "--cfg", "100"],
    "VPCSM": ["--loss", "vpcsm"],
}
SCALE = 2  # the 64 px frames, enlarged
LABEL_WIDTH = 96


def playground_sheet(strips: dict[str, Path], target: Path) -> None:
    """The strips one above the other, each enlarged, with its label on the left."""
    rows = [Image.open(path).convert("RGB") for path in strips.values()]
    rows = [row.resize((row.width * SCALE, row.height * SCALE), Image.NEAREST) for row in rows]
    sheet = Image.new("RGB", (LABEL_WIDTH + rows[0].width, sum(row.height for row in rows)), "white")
    draw = ImageDraw.Draw(sheet)
    top = 0
    for label, row in zip(strips, rows):
        draw.text((6, top + row.height // 2 - 6), label, fill="black")
        sheet.paste(row, (LABEL_WIDTH, top))
        top += row.height
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)


def playground() -> None:
    strips = {}
    for label, flags in PLAYGROUND_ROWS.items():
        out = Path("outputs") / "readme_playground" / f"{flags[1]}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        code = main([*PLAYGROUND, *flags, "--out", str(out)])
        if code != 0:
            raise SystemExit(code)
        strips[label] = out
    playground_sheet(strips, Path("docs") / "playground.png")


def compose(run_dir: Path, target: Path) -> None:
    views = Image.open(run_dir / "views.png").convert("RGB")
    prompt = Image.open(run_dir / "visual_prompt.png").convert("RGB").resize((views.height, views.height), Image.NEAREST)
    sheet = Image.new("RGB", (prompt.width + 8 + views.width, views.height), "white")
    sheet.paste(prompt, (0, 0))
    sheet.paste(views, (prompt.width + 8, 0))
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)


def generate_figures() -> None:
    for name, args in RUNS.items():
        out = Path("outputs") / f"readme_{name}"
        code = main(["generate", *args, "--out", str(out), "--overwrite", "--quiet"])
        if code != 0:
            raise SystemExit(code)
        compose(out, Path("docs") / f"{name}.png")
        metrics = json.loads((out / "metrics.json").read_text())
        print(name, json.dumps({k: metrics[k] for k in ("time_s", "seconds_per_step", "num_gaussians")}),
              json.dumps(metrics["attributes"]["prompt"]), json.dumps(metrics["attributes"].get("visual_prompt")))


def examples() -> None:
    for name, attributes in EXAMPLES.items():
        world_image(*attributes, Path("examples") / f"{name}.png")


FIGURES = {"examples": examples, "generate": generate_figures, "playground": playground}

if __name__ == "__main__":
    for figure in sys.argv[1:] or FIGURES:
        if figure not in FIGURES:
            raise SystemExit(f"unknown figure '{figure}'; choose from {', '.join(FIGURES)}")
        FIGURES[figure]()
