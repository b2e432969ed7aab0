"""`tv3dg 2d` on the bundled mini prior with its defaults (the mini preset's distill section)
ends in the prompt, as read by the mini world's attribute classifier (evaluation only; the
prior never sees it).

Seeds, steps and the threshold come from these runs (commit 02b57cb; AMD EPYC, 2 cores, shared
with other jobs). Each is the CLI's own command,
    tv3dg 2d --prompt PROMPT [--image examples/yellow_striped_cube.png --ip-mode style] \
        --loss vpcsm --steps N --seed S --out strip.png
read with this file's helpers (from tests/:
    python -c "from test_playground_mini import *; print(read_attributes(final_frame('strip.png', 8)))"
), which give the top class and its probability for shape, colour and pattern (read off the
image before its 8-bit PNG rounding, which moved them by under 0.01 where checked):
- style, "a torus" + the yellow striped cube, 200 steps: seed 0 torus 0.91, yellow 0.98, striped
  0.99; seed 1 torus 0.98, yellow 1.00, striped 0.99; seed 2 torus 1.00, yellow 0.96, striped
  0.98; seed 3 torus 1.00, yellow 1.00, striped 0.99. Fewer steps do not hold: seed 0 at 100
  steps is read as a cube (0.71), at 60 steps as a cube (0.76) with striped only 0.57.
- text only, 200 steps, "a green striped cube": seed 0 cube 1.00, green 0.98, striped 0.96;
  seed 1 cube 1.00, green 0.99, striped 0.86 (0.85 from the PNG). Other prompts show where the 2D result falls
  short, which is why the test uses this one. Seed 0: "a red striped cube" cube 1.00, pink 0.39,
  striped 0.96 (red read as pink); "a red checkered cone" cone 0.92, pink 0.51, checkered 0.53;
  "a blue checkered sphere" sphere 0.99, blue 0.93, striped 0.90; "a purple checkered torus"
  torus 0.99, purple 0.99, striped 0.94 (the checks merge into stripes at 32 px). Seed 1 of the
  last two is read right, the checks only just: sphere 1.00, blue 0.87, checkered 0.77; torus
  1.00, purple 0.98, checkered 0.52. At 100 steps "a red checkered cone" (seed 0) was a pink
  plain cone.
Time: 200 VPCSM steps took 17 s on this CPU with the machine lightly loaded, so each case should
take about 20 s alone on it; with other jobs at a load average of 14 to 27, the cases took 303 s
(style) and 254 s (text).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tv3dg.cli import main
from tv3dg.priors.mini.classifier import ATTRIBUTE_NAMES, load_classifier

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STEPS = 200
SEED = 0
MIN_PROBABILITY = 0.5
"""Each wanted attribute must be the classifier's top class, and with at least this probability,
so that a frame between two readings does not pass. Every wanted reading of the two cases
tested, over the seeds measured above, was 0.85 or more, which leaves room for another CPU or
thread count."""


def final_frame(path, frames: int) -> torch.Tensor:
    """The last snapshot of a strip as [1, 3, H, W] in [0, 1]."""
    strip = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    last = np.split(strip, frames, axis=1)[-1]
    return torch.from_numpy(last).permute(2, 0, 1)[None]


def read_attributes(image: torch.Tensor) -> dict[str, tuple[str, float]]:
    """Top class and its probability per attribute."""
    with torch.no_grad():
        logits = load_classifier().eval()(image)
    read = {}
    for name, row in logits.items():
        probabilities = row.softmax(-1)[0]
        index = int(probabilities.argmax())
        read[name] = (ATTRIBUTE_NAMES[name][index], float(probabilities[index]))
    return read


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, wanted",
    [
        # style: the text's shape, the visual prompt's colour and pattern (the cube is not taken)
        (["--prompt", "a torus", "--image", str(EXAMPLES / "yellow_striped_cube.png"), "--ip-mode", "style"],
         {"shape": "torus", "colour": "yellow", "pattern": "striped"}),
        # text only: every attribute the prompt names
        (["--prompt", "a green striped cube"], {"shape": "cube", "colour": "green", "pattern": "striped"}),
    ],
    ids=["style", "text"],
)
def test_vpcsm_on_the_bundled_prior_ends_in_the_prompt(argv, wanted, tmp_path):
    out = tmp_path / "strip.png"
    frames = 2
    assert main(["2d", *argv, "--loss", "vpcsm", "--steps", str(STEPS), "--seed", str(SEED), "--frames", str(frames),
                 "--out", str(out)]) == 0
    read = read_attributes(final_frame(out, frames))
    for name, value in wanted.items():
        assert read[name][0] == value and read[name][1] >= MIN_PROBABILITY, (name, read)
