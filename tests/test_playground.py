"""`tv3dg 2d` end to end on tiny weights given by path, and its one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import make_tiny_world, point_mini_prior_at

import tv3dg.cli as cli
from tv3dg.distill.config import DistillConfig
from tv3dg.distill.losses import compute_distillation
from tv3dg.distill.playground import optimise_image, snapshot_steps
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
    assert ("3.0 UNet calls/step" if loss == "vpcsm" else "1.0 UNet calls/step") in printed


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
    start = (0.5 + 0.1 * torch.randn(1, 3, 16, 16, generator=generator)).clamp(0.05, 0.95)
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
    ],
)
def test_2d_errors_are_one_line(main, world, capsys, extra, message):
    code = main(["2d", "--prompt", "a dog", "--model", str(world.model_dir), "--ip-adapter", str(world.ip_adapter), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


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
