"""The worked example of the README and docs/generate.md: run its two commands and compose
`docs/demo.png` and `docs/style_torus.png`.

    python benchmarks/readme_figures.py        # about 4 minutes on a 2-core CPU

Each figure is the visual prompt (left, enlarged) beside the run's `views.png` (8 views).
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tv3dg.cli import main

RUNS = {
    "demo": ["--prompt", "a red striped cube"],
    "style_torus": ["--prompt", "a torus", "--image", "examples/yellow_striped_cube.png", "--mode", "style"],
}


def compose(run_dir: Path, target: Path) -> None:
    views = Image.open(run_dir / "views.png").convert("RGB")
    prompt = Image.open(run_dir / "visual_prompt.png").convert("RGB").resize((views.height, views.height), Image.NEAREST)
    sheet = Image.new("RGB", (prompt.width + 8 + views.width, views.height), "white")
    sheet.paste(prompt, (0, 0))
    sheet.paste(views, (prompt.width + 8, 0))
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)


def run() -> None:
    for name, args in RUNS.items():
        out = Path("outputs") / f"readme_{name}"
        code = main(["generate", *args, "--out", str(out), "--overwrite", "--quiet"])
        if code != 0:
            raise SystemExit(code)
        compose(out, Path("docs") / f"{name}.png")
        metrics = json.loads((out / "metrics.json").read_text())
        print(name, json.dumps({k: metrics[k] for k in ("time_s", "seconds_per_step", "num_gaussians")}),
              json.dumps(metrics["attributes"]["prompt"]), json.dumps(metrics["attributes"].get("visual_prompt")))


if __name__ == "__main__":
    run()
