"""Words outside the mini prior's vocabulary are dropped and reported, never fed in as byte pieces."""

from __future__ import annotations

import pytest
from tiny_models import make_tiny_world

from tv3dg.priors.config import PriorConfig
from tv3dg.priors.diffusers_prior import DiffusersPrior


@pytest.fixture(scope="module")
def mini():
    return DiffusersPrior(PriorConfig(ip_adapter=None, device="cpu"))


def test_unknown_words_are_dropped_and_said_once(mini, capsys):
    kept, dropped = mini.known_words("a fluffy green striped cube at golden hour")
    assert kept == "a green striped cube" and dropped == ["fluffy", "at", "golden", "hour"]
    assert mini.report_dropped_words("A fluffy green striped cube, at golden hour!") == ["fluffy", "at", "golden", "hour"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'fluffy', 'at', 'golden', 'hour'" in err and "'a green striped cube'" in err


def test_known_prompts_are_read_unchanged(mini, capsys):
    free = "a small green striped cube on the ground"  # free phrasing, sizes and places are words it knows
    assert mini.known_words(free) == (free, [])
    assert mini.report_dropped_words("a photo of a blue sphere, back view") == [] and capsys.readouterr().err == ""
    dropped = mini.prepare_conditions("a fluffy red striped cube").positive
    assert (dropped == mini.prepare_conditions("a red striped cube").positive).all()


def test_open_vocabulary_priors_read_the_prompt_as_written(tmp_path):
    world = make_tiny_world(tmp_path)
    prior = DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=None))
    assert prior.known_words("a small dog on the grass") == ("a small dog on the grass", [])
