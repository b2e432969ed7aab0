"""The model card's prior checks score what they claim: a stand-in prior that draws the true
object scores every attribute right and shows the eyes exactly when the camera is in front."""

from __future__ import annotations

import pytest
import torch

from tv3dg.cli import main
from tv3dg.priors.mini.architecture import IMAGE_SIZE
from tv3dg.priors.mini.captions import parse_caption
from tv3dg.priors.mini.classifier import load_classifier
from tv3dg.priors.mini.evaluate import PriorCheckConfig, mini_prior, object_prompt, text_samples
from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS, WeightPaths
from tv3dg.priors.mini.world import WorldObject, render_objects
from tv3dg.render.cameras import Cameras, orbit_cameras


class TruthPrior:
    """Draws the object the prompt names, at each camera (one front view without cameras)."""

    def sample(self, prompt: str, visual_prompt=None, cameras: Cameras | None = None, steps: int = 30, guidance: float = 7.5,
               generator: torch.Generator | None = None) -> torch.Tensor:
        parsed = parse_caption(prompt)
        obj = WorldObject(parsed.shape, parsed.colour, parsed.pattern, parsed.material or 0, parsed.size or 0)
        cameras = cameras if cameras is not None else orbit_cameras(15.0, 0.0, 3.25, 40.0, IMAGE_SIZE)
        return render_objects([obj] * len(cameras), cameras).rgb


def test_object_prompts_name_what_the_object_is():
    assert object_prompt(WorldObject(1, 1, 3, material=1, size=1)) == "a small shiny orange dotted cube"
    assert object_prompt(WorldObject(0, 0, 0, material=1, size=1), with_appearance=False) == "a small sphere"
    parsed = parse_caption(object_prompt(WorldObject(7, 9, 4)))
    assert (parsed.shape, parsed.colour, parsed.pattern) == (7, 9, 4)


@pytest.mark.slow
def test_text_check_scores_a_prior_that_draws_the_truth_as_right_with_eyes_only_in_front():
    scores, sheet = text_samples(TruthPrior(), load_classifier(), PriorCheckConfig(prompts=6), torch.Generator().manual_seed(0))
    assert scores["all"] >= 0.9, scores  # the classifier's own error rate, a few % per attribute, is all that is left
    eyes = scores["eyes_visible"]
    assert eyes["no_view_word"] == eyes["front"] == 1.0 and eyes["back"] == 0.0, eyes
    assert len(sheet) == 6 and sheet[0].shape == (5, 3, IMAGE_SIZE, IMAGE_SIZE)  # the truth, then 4 samples


def test_eval_of_a_weights_folder_that_is_not_one_fails_in_one_line(tmp_path, capsys):
    assert main(["mini", "eval", "--weights", str(tmp_path), "--out", str(tmp_path / "eval.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tv3dg: error: ") and "not a complete mini weights folder" in err and err.count("\n") == 1
    assert not (tmp_path / "eval.json").exists()


def test_a_trial_folder_reads_prompts_as_the_package_prior_does(tmp_path):
    """A `weights_dir=` trial is scored with the same words the registered mini prior reads."""
    (tmp_path / "trial").symlink_to(PACKAGE_WEIGHTS.root, target_is_directory=True)  # a folder, not the package
    package, folder = mini_prior(), mini_prior(WeightPaths(tmp_path / "trial"))
    assert folder.config.model != package.config.model
    text = "a small red cube on the ground, back view"
    assert folder.known_words(text) == package.known_words(text) == ("a small red cube on the ground back view", [])
