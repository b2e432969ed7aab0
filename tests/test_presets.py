"""The shipped presets are valid configs and a run's config.yaml rebuilds the same config."""

import pytest

from tv3dg.config import dump_yaml
from tv3dg.errors import UserError
from tv3dg.pipeline.config import PRESETS, build_config


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_round_trips_through_config_yaml(preset, tmp_path):
    config = build_config(preset, {"prompt": "a red cube"}, [])
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_yaml(config))
    assert build_config(str(saved), {}, []) == config


def test_overrides_beat_flags_and_presets():
    config = build_config("mini", {"prompt": "a cube", "steps": 10}, ["steps=20", "distill.loss=csm"])
    assert config.steps == 20 and config.distill.loss == "csm"


def test_unknown_preset_names_the_choices():
    with pytest.raises(UserError, match="mini, sd15"):
        build_config("sdxl", {"prompt": "a cube"}, [])
