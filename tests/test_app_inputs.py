"""The app's pieces that need no browser: inputs -> config (the CLI's messages), a visual prompt
only from an upload, the prompt cap, run folders and their owners, retention, sign-in accounts and
the open-server warning, the missing-extra message."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tv3dg.app.access import open_server_warning, read_accounts
from tv3dg.app.inputs import AppSettings, PageInputs, config_for
from tv3dg.app.jobs import run_job
from tv3dg.app.retention import Retention
from tv3dg.app.runs import discard_unfinished, finished_runs, new_run_dir, record_owner, runs_for, slug, zip_run
from tv3dg.cli import main
from tv3dg.errors import UserError
from tv3dg.pipeline.interrupt import StopRequest


def _settings(tmp_path: Path, *overrides: str, uploads: Path | None = None) -> AppSettings:
    """Settings whose upload folder is `uploads` (default: all of `tmp_path`)."""
    return AppSettings.from_command_line(None, {}, list(overrides), tmp_path / "runs", max_steps=100,
                                         uploads=uploads or tmp_path)


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


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (200, 40, 40)).save(path)
    return path


@pytest.mark.parametrize("trick", ["outside", "symlink", "dotdot"])
def test_a_visual_prompt_from_outside_the_upload_folder_is_refused(tmp_path, monkeypatch, trick):
    uploads, outside = tmp_path / "uploads", _png(tmp_path / "private" / "photo.png")
    _png(uploads / "abc" / "mine.png")
    monkeypatch.chdir(uploads)
    if trick == "outside":
        path = str(outside)
    elif trick == "symlink":
        path = str(uploads / "abc" / "link.png")
        os.symlink(outside, path)
    else:
        path = "abc/../../private/photo.png"
    settings = _settings(tmp_path, uploads=uploads)
    with pytest.raises(UserError) as err:
        list(run_job(settings, _inputs(image=path), stop=None))
    assert str(err.value) == (f"the visual prompt {path} is not a file uploaded to this app; upload the image "
                              "(server paths are not accepted)")
    assert not settings.runs.exists()
    config = config_for(settings, _inputs(image="abc/../abc/mine.png"))  # `..` that stays inside is fine
    assert config.image == str((uploads / "abc" / "mine.png").resolve())


def test_prompts_are_capped_at_1000_characters(tmp_path):
    assert config_for(_settings(tmp_path), _inputs(prompt="a" * 1000)).prompt == "a" * 1000
    with pytest.raises(UserError) as err:
        list(run_job(_settings(tmp_path), _inputs(prompt="a" * 100_000), stop=None))
    assert str(err.value) == "the prompt is 100000 characters long; this app takes at most 1000: shorten it"
    assert not (tmp_path / "runs").exists()


def _finished_run(runs: Path, name: str, finished_at: float, size: int = 10, user: str | None = None) -> Path:
    run_dir = runs / name
    run_dir.mkdir(parents=True)
    (run_dir / "asset.ply").write_bytes(b"x" * size)
    (run_dir / "metrics.json").write_text("{}")
    os.utime(run_dir / "metrics.json", (finished_at, finished_at))
    if user is not None:
        record_owner(run_dir, user)
    return run_dir


def test_retention_deletes_the_oldest_finished_runs_only(tmp_path):
    runs = tmp_path / "runs"
    # Names sort the other way round from finishing times: the finishing time decides.
    old, middle, new = (_finished_run(runs, name, t) for name, t in (("c", 100), ("b", 200), ("a", 300)))
    running = runs / "0-running"  # no metrics.json yet
    running.mkdir()
    (running / "asset.ply").write_bytes(b"x" * 1000)
    assert Retention().prune(runs, new) == [] and len(finished_runs(runs)) == 3  # the default keeps every run
    assert Retention(keep_runs=2).prune(runs, new) == [old]
    assert set(runs.iterdir()) == {middle, new, running}
    assert Retention(keep_runs=1).prune(runs, middle) == [new]  # never the run that just finished
    assert set(runs.iterdir()) == {middle, running}


def test_retention_by_size_keeps_the_folder_under_the_bound(tmp_path):
    runs = tmp_path / "runs"
    folders = [_finished_run(runs, f"r{i}", 100 + i, size=1000) for i in range(4)]  # ~1 kB each (+ metrics)
    assert Retention(max_bytes=2500).prune(runs, folders[-1]) == folders[:2]
    assert sorted(runs.iterdir()) == folders[2:]
    assert Retention(max_bytes=1).prune(runs, folders[-1]) == [folders[2]]  # the new one stays even if too big
    with pytest.raises(UserError, match="--keep-runs must be at least 1, got 0"):
        Retention.from_command_line(0, None)
    with pytest.raises(UserError, match="--max-runs-gb must be above 0, got -1"):
        Retention.from_command_line(None, -1.0)
    assert Retention.from_command_line(3, 0.5) == Retention(3, 500_000_000)


def test_with_sign_in_each_user_sees_only_their_own_runs(tmp_path):
    runs = tmp_path / "runs"
    alice = _finished_run(runs, "20260101-000003-a", 3, user="alice")
    bob = _finished_run(runs, "20260101-000002-b", 2, user="bob")
    anonymous = _finished_run(runs, "20260101-000001-c", 1)
    assert runs_for(runs, "alice") == [alice] and runs_for(runs, "bob") == [bob] and runs_for(runs, "carol") == []
    assert runs_for(runs, None) == [alice, bob, anonymous]  # no sign-in: one shared gallery, as before


def test_accounts_from_flags_and_file(tmp_path):
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("# lab\n\ncarol:a:b:c\n  dave:pw  \n")
    assert read_accounts(["alice:pw1", "bob:pw2"], accounts) == [
        ("alice", "pw1"), ("bob", "pw2"), ("carol", "a:b:c"), ("dave", "pw")]
    for flag in ("alice", "alice:", ":pw"):
        with pytest.raises(UserError, match="^--auth: expected USER:PASSWORD with a non-empty user and password$"):
            read_accounts([flag], None)
    accounts.write_text("alice:pw\nsecret-without-colon\n")
    with pytest.raises(UserError, match="line 2: expected USER:PASSWORD") as err:
        read_accounts([], accounts)
    assert "secret" not in str(err.value)  # a malformed line may be a password: never echoed
    accounts.write_text("alice:pw\n")
    with pytest.raises(UserError, match="user 'alice' is given more than once"):
        read_accounts(["alice:x"], tmp_path / "accounts.txt")
    with pytest.raises(UserError, match="cannot read it"):
        read_accounts([], tmp_path / "missing.txt")


@pytest.mark.parametrize("host, accounts, warned", [
    ("127.0.0.1", [], False), ("localhost", [], False), ("::1", [], False), ("127.0.1.1", [], False),
    ("0.0.0.0", [], True), ("192.168.1.20", [], True), ("lab-gpu.example.org", [], True),
    ("0.0.0.0", [("alice", "pw")], False)])
def test_an_open_server_is_warned_about(host, accounts, warned):
    warning = open_server_warning(host, accounts)
    assert (warning is not None) == warned
    if warned:
        assert warning.startswith(f"--host {host} without --auth: anyone who can reach this address")


@pytest.mark.slow  # builds the app's page twice
def test_the_app_command_warns_once_and_hands_the_accounts_to_gradio(tmp_path, monkeypatch, capsys):
    import gradio

    launched = []
    monkeypatch.setattr(gradio.Blocks, "launch", lambda self, **options: launched.append(options))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    argv = ["app", "--runs", str(tmp_path / "runs")]
    assert main([*argv, "--host", "0.0.0.0"]) == 0
    assert capsys.readouterr().err == ("tv3dg: warning: --host 0.0.0.0 without --auth: anyone who can reach this "
                                       "address can run generations and see every run; add --auth USER:PASSWORD "
                                       "or --auth-file FILE\n")
    assert launched[-1]["server_name"] == "0.0.0.0" and launched[-1]["auth"] is None
    assert main([*argv, "--host", "0.0.0.0", "--auth", "alice:pw", "--keep-runs", "3"]) == 0
    assert capsys.readouterr().err == "" and launched[-1]["auth"] == [("alice", "pw")]
    assert _cli_error(capsys, *argv, "--auth", "alice") == "--auth: expected USER:PASSWORD with a non-empty user and password"
