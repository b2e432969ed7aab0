"""One override syntax for every command that takes config keys: positional `key=value`, in any
order with the flags, checked strictly with the same messages."""

from __future__ import annotations

import pytest

import tv3dg.pipeline.run as pipeline_run
import tv3dg.priors.mini.stages as mini_stages
from tv3dg.cli import build_parser, main
from tv3dg.commands.playground import playground_config

COMMANDS = {
    "generate": ["generate", "--prompt", "a cube", "--out", "unused"],
    "2d": ["2d", "--prompt", "a cube"],
    "mini train": ["mini", "train", "--run-dir", "unused"],
}


@pytest.fixture
def captured(monkeypatch):
    """Replace the work of generate and mini train by recording the config they were given."""
    seen = {}

    def record(config, *args, **kwargs):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(pipeline_run, "generate", record)
    monkeypatch.setattr(mini_stages, "train", lambda run_dir, config, *rest: record(config))
    return seen


def test_generate_takes_flags_before_and_after_overrides(captured):
    with pytest.raises(SystemExit):
        main(["generate", "steps=5", "--prompt", "a cube", "--out", "unused", "distill.t_min=1e-2",
              "--image-encoder", "encoder_dir", "sgc.enabled=false", "--seed", "3"])
    config = captured["config"]
    assert (config.steps, config.seed, config.distill.t_min, config.sgc.enabled) == (5, 3, 0.01, False)
    assert config.prior.image_encoder == "encoder_dir"


def test_2d_flags_are_config_keys_and_overrides_win():
    args = build_parser().parse_args(["2d", "distill.weighting=sqrt", "--prompt", "a dog", "--loss", "sds", "steps=6",
                                      "--ip-scale", "0.5", "prior.ip_scale=0.25", "--cfg", "100", "distill.t_min=0.1"])
    config, preset = playground_config(args)
    assert preset == "mini" and config.steps == 6 and config.prior.ip_scale == 0.25
    assert (config.distill.loss, config.distill.weighting, config.distill.cfg_scale, config.distill.t_min) == (
        "sds", "sqrt", 100.0, 0.1)


def test_mini_train_takes_overrides_after_flags(captured):
    with pytest.raises(SystemExit):
        main([*COMMANDS["mini train"], "prior_steps=7", "vae_kl_weight=1e-6", "--max-minutes", "1"])
    assert captured["config"].prior_steps == 7 and captured["config"].vae_kl_weight == 1e-6


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "override, message",
    [
        ("bogus=1", "unknown config key 'bogus'; valid keys here: "),
        ("seed", "override 'seed' is not of the form key=value (e.g. steps=200)"),
        ("seed=[1", "override 'seed=[1' has a value that is not valid YAML"),
        ("seed=1e-9", "config key 'seed' must be an integer, got 1e-09"),
    ],
)
def test_every_command_checks_keys_with_the_same_message(command, override, message, capsys, captured):
    assert main([*COMMANDS[command], override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tv3dg: error: {message}") and err.count("\n") == 1
    assert "config" not in captured


@pytest.mark.parametrize("command", COMMANDS)
def test_set_is_gone(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*COMMANDS[command], "--set", "seed=1"])
    assert stop.value.code == 2 and "unrecognized arguments: --set" in capsys.readouterr().err
