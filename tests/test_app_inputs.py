"""The app's pieces that need no browser: inputs -> config (the CLI's messages), run folders, the
missing-extra message."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tv3dg.app.inputs import AppSettings, PageInputs, config_for
from tv3dg.app.jobs import run_job
from tv3dg.app.runs import discard_unfinished, finished_runs, new_run_dir, slug, zip_run
from tv3dg.cli import main
from tv3dg.errors import UserError
from tv3dg.pipeline.interrupt import StopRequest


def _settings(tmp_path: Path, *overrides: str) -> AppSettings:
    return AppSettings.from_command_line(None, {}, list(overrides), tmp_path / "runs", max_steps=100)


def _inputs(**changes) -> PageInputs:
    values = dict(prompt="a red striped cube", image=None, mode="texture", loss="vpcsm", steps=20.0, seed=3.0)
    values.update(changes)
    return PageInputs(**values)


def _cli_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    return capsys.readouterr().err.strip().removeprefix("tv3dg: error: ")


def test_page_values_win_over_the_command_line_which_wins_over_the_preset(tmp_path):
    settings = _settings(tmp_path, "steps=50", "distill.cfg_scale=5", "export.views=4")
    assert settings.defaults().steps == 50 and settings.defaults().distill.cfg_scale == 5
    config = config_for(settings, _inputs(cfg_scale=9.0, sgc=False, mode="style"))
    assert (config.steps, config.seed, config.distill.cfg_scale) == (20, 3, 9.0)
    assert not config.sgc.enabled and config.prior.ip_mode == "style" and config.export.views == 4


def test_a_misspelt_launch_key_fails_at_launch_with_the_cli_message(tmp_path, capsys):
    with pytest.raises(UserError) as err:
        _settings(tmp_path, "distill.cfg=5")
    assert str(err.value) == _cli_error(capsys, "generate", "--prompt", "x", "--out", str(tmp_path / "o"), "distill.cfg=5")


@pytest.mark.parametrize("case", ["empty prompt", "tiny", "rgb16", "corrupt", "huge", "zero steps"])
def test_bad_input_gives_the_cli_message(tmp_path, capsys, case):
    image = None
    if case == "tiny":
        image = tmp_path / "tiny.png"
        Image.new("RGB", (8, 8)).save(image)
    elif case == "rgb16":
        image = tmp_path / "deep.png"
        Image.fromarray(np.full((32, 32), 40000, np.uint16)).save(image)
    elif case == "corrupt":
        image = tmp_path / "broken.png"
        image.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    elif case == "huge":
        image = tmp_path / "huge.png"
        Image.new("RGB", (4100, 16)).save(image)
    inputs = _inputs(prompt="" if case == "empty prompt" else "a cube", image=str(image) if image else None,
                     steps=0.0 if case == "zero steps" else 20.0)
    with pytest.raises(UserError) as err:
        next(run_job(_settings(tmp_path), inputs, StopRequest()))  # the app's run: validated before its folder is made
    argv = ["generate", "--prompt", inputs.prompt, "--steps", str(int(inputs.steps)), "--out", str(tmp_path / "o")]
    assert str(err.value) == _cli_error(capsys, *argv, *(["--image", str(image)] if image else []))
    assert not (tmp_path / "runs").exists()


def test_steps_above_the_app_limit_are_refused(tmp_path):
    with pytest.raises(UserError, match="above this app's limit of 100"):
        config_for(_settings(tmp_path), _inputs(steps=101.0))


def test_run_folders_never_collide_and_failed_ones_are_removed(tmp_path):
    assert slug("A Red, Striped  cube!") == "a-red-striped-cube" and slug("???") == "run"
    folders = [new_run_dir(tmp_path, "a red striped cube") for _ in range(20)]
    assert len(set(folders)) == 20 and all(f.name.split("-", 2)[2].startswith("a-red-striped-cube-") for f in folders)
    done = folders[0]
    for name in ("asset.ply", "metrics.json", "checkpoints/last.safetensors"):
        (done / name).parent.mkdir(exist_ok=True)
        (done / name).write_text(name)
    assert finished_runs(tmp_path) == [done]
    discard_unfinished(done)
    discard_unfinished(folders[1])
    assert done.is_dir() and not folders[1].exists()
    with zipfile.ZipFile(zip_run(done, tmp_path / "zips")) as archive:
        assert sorted(archive.namelist()) == sorted(f"{done.name}/{n}" for n in
                                                    ("asset.ply", "metrics.json", "checkpoints/last.safetensors"))


def test_without_gradio_the_app_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    assert _cli_error(capsys, "app") == "the app needs Gradio; install it with: pip install 'tv3dg[app]'"
