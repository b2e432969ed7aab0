"""How large the PAG term is beside the classifier term, per PAG scale, on the bundled mini prior.

VPCSM's update is the classifier term plus `pag_scale * (eps(x|c) - eps_perturbed(x|c))`. A claim
about PAG means something only at a scale where that term moves the asset, so the ablation picks
its PAG variant from this sweep: the scale at which the PAG term's RMS is about 10% of the
classifier term's, averaged over every step of short runs.

    python benchmarks/pag_sweep.py --scales 1 5 10 20 --steps 200 --out benchmarks/results/pag_sweep.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from ablation_grid import EXPORT_OVERRIDES
from machine import command_line, describe_machine

from tv3dg.atomic import write_text_atomic
from tv3dg.pipeline.config import build_config
from tv3dg.pipeline.run import generate

PROMPTS = ("a red striped cube", "a grey dotted octahedron")
TARGET_RATIO = 0.10


def term_sizes(prompt: str, scale: float, steps: int, seed: int, out: Path) -> dict:
    """Mean RMS of each term over every step of one run at this PAG scale."""
    config = build_config("mini", {"prompt": prompt, "seed": seed, "steps": steps, "distill": {"pag_scale": scale}},
                          list(EXPORT_OVERRIDES))
    logs: list[dict] = []
    generate(config, out, progress=False, on_step=lambda step, values, gaussians: logs.append(values))
    classifier = float(np.mean([entry["classifier_rms"] for entry in logs]))
    pag = float(np.mean([entry["pag_rms"] for entry in logs]))
    return {"prompt": prompt, "pag_scale": scale, "seed": seed, "steps": steps,
            "classifier_rms": classifier, "pag_rms": pag, "ratio": pag / classifier}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 5.0, 10.0, 20.0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pag_sweep.json"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tv3dg-pag-"))
    rows = []
    for scale in args.scales:
        for index, prompt in enumerate(PROMPTS):
            rows.append(term_sizes(prompt, scale, args.steps, args.seed, root / f"pag{scale:g}_{index}"))
            print(json.dumps(rows[-1]), flush=True)
    ratios = {scale: float(np.mean([r["ratio"] for r in rows if r["pag_scale"] == scale])) for scale in args.scales}
    for scale, ratio in ratios.items():
        print(f"pag_scale {scale:g}: PAG term / classifier term = {ratio:.3f}")
    # The PAG term is linear in the scale; the asset it shapes is not, so the pick is the swept
    # scale whose measured ratio lies nearest the target.
    pick = min(ratios, key=lambda scale: abs(np.log(ratios[scale] / TARGET_RATIO)))
    print(f"nearest to {TARGET_RATIO:.0%}: pag_scale {pick:g}")
    record = {"command": command_line(__file__), "machine": describe_machine(), "target_ratio": TARGET_RATIO,
              "ratio_per_scale": {f"{scale:g}": ratio for scale, ratio in ratios.items()}, "pick": pick, "runs": rows}
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
