"""`tv3dg 2d` end to end on tiny weights given by path, and its one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import make_tiny_world, point_mini_prior_at

import tv3dg.cli as cli
from tv3dg.cli import build_parser
from tv3dg.commands.playground import playground_config
from tv3dg.config import from_dict
from tv3dg.distill.config import DistillConfig
from tv3dg.distill.losses import compute_distillation
from tv3dg.distill.playground import WHITE_START, optimise_image, snapshot_steps
from tv3dg.distill.playground_config import PlaygroundConfig
from tv3dg.pipeline.config import GenerateConfig, preset_data
from tv3dg.priors.config import PriorConfig
from tv3dg.priors.diffusers_prior import DiffusersPrior


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    world = make_tiny_world(root)
    Image.fromarray((np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)).save(root / "reference.png")
    return world


@pytest.fixture
def main(monkeypatch):
    """The real CLI entry point, with only this subcommand registered."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("playground",))
    return cli.main


def strip_frames(path, count):
    strip = np.asarray(Image.open(path).convert("RGB")).astype(np.float32)
    return np.split(strip, count, axis=1)


@pytest.mark.parametrize("loss, target_space", [("vpcsm", "latent"), ("sds", "latent"), ("vpcsm", "image")])
def test_2d_writes_a_strip_of_progress(main, world, tmp_path, capsys, loss, target_space):
    out = tmp_path / f"{loss}.png"
    code = main([
        "2d", "--prompt", "a red dog", "--image", str(world.model_dir.parent / "reference.png"), "--loss", loss,
        "--model", str(world.model_dir), "--ip-adapter", str(world.ip_adapter),
        "--steps", "6", "--frames", "3", "--out", str(out), "--lr", "0.2", f"distill.target_space={target_space}",
    ])
    assert code == 0
    assert Image.open(out).size == (3 * 16, 16)  # 3 snapshots of the 16 px working resolution
    first, _, last = strip_frames(out, 3)
    assert np.abs(first - last).mean() > 1.0  # the image moved (grey levels)
    printed = capsys.readouterr().out
    assert "snapshots at steps [0, 3, 6]" in printed
    # a model given by path runs with the sd15 preset's loss settings: VPCSM inverts in k DDIM calls, then one more
    calls = preset_distill("sd15").inversion_steps + 1 if loss == "vpcsm" else 1
    assert f"{calls:.1f} UNet calls/step" in printed and "the distill section of the sd15 preset" in printed


def test_2d_optimises_a_latent_without_image_prompt(main, world, tmp_path):
    out = tmp_path / "csm.png"
    code = main(["2d", "--prompt", "a cube", "--loss", "csm", "--model", str(world.model_dir), "--target", "latent",
                 "--steps", "2", "--frames", "2", "--out", str(out), "distill.weighting=sqrt"])
    assert code == 0 and Image.open(out).size == (32, 16)


def test_first_adam_step_descends_the_distillation_gradient(world):
    """One step on the latent moves each element by -lr * sign(grad): the loss's gradient, descended."""
    prior = DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=None))
    conditions = prior.prepare_conditions("a cube")
    config = DistillConfig(loss="csm", t_min=0.4, t_max=0.41)  # t is fixed: 400 or 410
    run = optimise_image(prior, conditions, config, steps=1, lr=0.01, target="latent", frames=2, seed=3)
    assert run.frame_steps == [0, 1] and len(run.logs) == 1

    # replay: the same start latent and t, then the gradient the step must have followed
    generator = torch.Generator().manual_seed(3)
    start = torch.full((1, 3, 16, 16), WHITE_START)
    z0 = prior.encode_images(start).detach()
    grad, logs = compute_distillation(prior, z0, conditions, 0, config, generator)
    assert logs["t"] == run.logs[0]["t"]
    moved = prior.encode_images(start).detach() - 0.01 * torch.sign(grad)
    torch.testing.assert_close(prior.decode_latents(moved)[0], run.frames[1], atol=1e-4, rtol=1e-4)


def test_snapshot_steps():
    assert snapshot_steps(10, 3) == [0, 5, 10]
    assert snapshot_steps(4, 8) == [0, 1, 2, 3, 4]
    assert snapshot_steps(7, 1) == [7]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--cfg", "500"], "cfg_scale 500.0 is out of range"),
        (["--pag", "-2"], "pag_scale -2.0 is out of range"),
        (["--image", "NOWHERE/ref.png"], "does not exist"),
        (["distill.cfg=3"], "unknown config key 'distill.cfg'"),
        (["--out", "strip.txt"], "must end in .png or .jpg"),
        (["--target", "latent", "distill.target_space=image"], "needs an image to pull"),
        (["--prompt", "  "], "the prompt is empty"),
        (["--steps", "0"], "--steps must be at least 1, got 0"),
        (["steps=-3"], "--steps must be at least 1, got -3"),
        (["--frames", "0"], "--frames must be at least 1"),
        (["--lr", "0"], "--lr must lie in (0, 10], got 0.0"),
        (["--lr", "-0.1"], "--lr must lie in (0, 10], got -0.1"),
        (["--lr", "10.5"], "--lr must lie in (0, 10], got 10.5"),
        (["--lr", "nan"], "--lr must lie in (0, 10], got nan"),
        (["--config", "nosuch"], "unknown preset 'nosuch'"),
    ],
)
def test_2d_errors_are_one_line(main, world, capsys, extra, message):
    code = main(["2d", "--prompt", "a dog", "--model", str(world.model_dir), "--ip-adapter", str(world.ip_adapter), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def preset_distill(name: str) -> DistillConfig:
    return from_dict(GenerateConfig, preset_data(name)).distill


def config_of(*argv: str) -> tuple[PlaygroundConfig, str]:
    return playground_config(build_parser().parse_args(["2d", "--prompt", "a dog", *argv]))


@pytest.mark.parametrize("argv, preset", [((), "mini"), (("--model", "some/folder"), "sd15"),
                                          (("--model", "some/folder", "--config", "mini"), "mini"),
                                          (("--config", "sd15"), "sd15")])
def test_2d_loss_defaults_are_the_distill_section_of_the_priors_preset(argv, preset):
    """Every distill key is the preset's own, except that its step schedules are stretched from the
    preset's run (e.g. 400 steps for mini) to the playground's 200 steps."""
    config, used = config_of(*argv)
    expected, preset_steps = preset_distill(preset), from_dict(GenerateConfig, preset_data(preset)).steps
    assert used == preset
    for key in vars(expected):
        if key != "t_max":
            assert getattr(config.distill, key) == getattr(expected, key), key
    start, first, last, end = expected.t_max
    assert config.distill.t_max == [start, first, last, round(end * config.steps / preset_steps)]
    assert config.distill.t_max[3] / config.steps == pytest.approx(end / preset_steps, abs=1 / config.steps)


def test_2d_flags_keys_and_a_yaml_preset_override_the_defaults(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("steps: 100\ndistill:\n  loss: csm\n  t_max: [10, 0.9, 0.4, 50]\n  inversion_steps: 4\n")
    config, used = config_of("--config", str(preset), "--pag", "0", "steps=40")
    assert used == str(preset)
    assert (config.distill.loss, config.distill.inversion_steps, config.distill.pag_scale) == ("csm", 4, 0.0)
    assert config.distill.t_max == [4, 0.9, 0.4, 20]  # the file's schedule over 100 steps, stretched to 40
    config, _ = config_of("distill.t_max=[0, 0.9, 0.3, 7]", "distill.target_space=latent")
    assert config.distill.t_max == [0, 0.9, 0.3, 7] and config.distill.target_space == "latent"  # as given


def test_2d_latent_target_takes_the_step_on_the_latent():
    assert preset_distill("mini").target_space == "image"  # the preset's setting for renders...
    config, _ = config_of("--target", "latent")
    assert config.distill.target_space == "latent"  # ...gives way when the latent itself is optimised


def test_2d_help_names_the_preset_whose_defaults_apply(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["2d", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default to the distill section of the preset of the prior it runs on: mini on the bundled prior, " \
           "sd15 with --model (--config picks another preset)" in text


def test_2d_unreadable_image_and_missing_model(main, world, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    assert main(["2d", "--prompt", "a dog", "--model", str(world.model_dir), "--ip-adapter", str(world.ip_adapter),
                 "--image", str(broken)]) == 2
    assert "could not be read as an image" in capsys.readouterr().err
    assert main(["2d", "--prompt", "a dog", "--model", str(tmp_path / "no-model")]) == 2
    assert "neither a folder" in capsys.readouterr().err


def test_2d_defaults_to_the_bundled_prior(main, tmp_path, capsys, monkeypatch):
    point_mini_prior_at(monkeypatch, tmp_path / "not-trained")
    assert main(["2d", "--prompt", "a dog"]) == 2
    assert "run `tv3dg mini train` or pass --model" in capsys.readouterr().err
