"""`tv3dg batch` on a local Ray instance (2 CPUs) with short mini-prior jobs: outputs and index, a rerun
that skips, a failing job that does not stop the others, and a killed worker whose job resumes."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

import pytest
import torch

from tv3dg.batch import run_batch
from tv3dg.cli import main
from tv3dg.gaussians.ply import load_ply

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.ray]

FAST = [
    "steps=6", "checkpoint_every=3", "sgc.start_step=2", "sgc.sample_steps=3", "visual_prompt.sample_steps=3",
    "camera.views_per_step=2", "init.num_points=500", "gaussians.densify.start_step=2",
    "gaussians.densify.interval=2", "export.turntable_frames=4", "export.turntable_resolution=48",
    "export.mesh.resolution=32", "export.mesh.texture=false",  # the texture bake is tested in test_mesh_export
]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One Ray instance for the module (starting Ray costs seconds); run_batch uses it and leaves it up."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def _jsonl(path, *jobs):
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


def _rows(out):
    return [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]


def test_three_jobs_finish_with_their_outputs_and_a_rerun_skips_them(tmp_path, capsys):
    jobs = _jsonl(tmp_path / "jobs.jsonl", {"prompt": "a red striped cube"},
                  {"prompt": "a blue sphere", "seed": 1, "tags": {"group": "b"}},
                  {"prompt": "a green torus", "overrides": ["steps=4"]})
    out = tmp_path / "out"
    assert main(["batch", str(jobs), "--out", str(out), *FAST]) == 0
    rows = _rows(out)
    assert [row["prompt"] for row in rows] == ["a red striped cube", "a blue sphere", "a green torus"]
    assert [row["status"] for row in rows] == ["done"] * 3 and rows[1]["tags"] == {"group": "b"}
    for row, steps in zip(rows, (6, 6, 4)):
        folder = out / row["id"]
        assert row["out"] == str(folder) and not row["skipped"] and row["resumed_from"] == 0
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["steps"] == steps and row["unet_calls"] == metrics["unet"]["calls"] > 0
        assert load_ply(folder / "asset.ply").num_points == row["num_gaussians"] > 0
        assert set(row["attributes"]["prompt"]) >= {"shape", "colour", "all"}
        for name in ("mesh.glb", "turntable.mp4", "views.png", "config.yaml", "checkpoints/last.safetensors"):
            assert (folder / name).stat().st_size > 0, name
    header = (out / "index.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["id", "prompt", "status"] and "attributes.prompt.all" in header
    assert len((out / "index.csv").read_text().splitlines()) == 4
    from PIL import Image

    assert Image.open(out / "contact_sheet.png").size[0] >= 3 * 160
    assert "3 of 3 jobs done" in capsys.readouterr().out

    stamps = {row["id"]: (out / row["id"] / "asset.ply").stat().st_mtime_ns for row in rows}
    assert main(["batch", str(jobs), "--out", str(out), "--quiet", *FAST]) == 0
    again = _rows(out)
    assert all(row["skipped"] and row["status"] == "done" for row in again)
    assert [row["num_gaussians"] for row in again] == [row["num_gaussians"] for row in rows]
    assert stamps == {row["id"]: (out / row["id"] / "asset.ply").stat().st_mtime_ns for row in again}


def test_a_job_with_a_missing_image_fails_alone_and_the_exit_code_says_so(tmp_path, capsys):
    jobs = _jsonl(tmp_path / "jobs.jsonl", {"prompt": "a green torus", "image": "missing.png"},
                  {"prompt": "a yellow cone", "overrides": ["steps=2"]})
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", str(jobs), "--out", str(out), "--quiet", *FAST])
    assert exit_info.value.code == 1
    failed, done = _rows(out)
    assert failed["status"] == "failed" and done["status"] == "done"
    assert f"image '{tmp_path / 'missing.png'}' does not exist" in failed["reason"]
    assert len(failed["reason"].splitlines()) == 1 and failed["num_gaussians"] is None
    assert (out / done["id"] / "asset.ply").is_file()
    assert f"failed: {failed['id']}: image" in capsys.readouterr().err


def test_a_killed_worker_is_retried_and_its_job_resumes_to_the_uninterrupted_asset(tmp_path):
    """Two copies of one job run side by side; the worker of one is SIGKILLed after its first checkpoint.
    Ray retries that task, which resumes from the checkpoint and must end where the other one did."""
    out = tmp_path / "out"
    steps = ["steps=12", "checkpoint_every=3"]
    jobs = [{"prompt": "a red striped cube", "id": "killed"}, {"prompt": "a red striped cube", "id": "straight"}]
    killed: dict = {}
    watcher = threading.Thread(target=_kill_after_first_checkpoint, args=(out / "killed", killed), daemon=True)
    watcher.start()
    rows = run_batch(jobs, out, overrides=FAST + steps, max_retries=2, progress=False)
    watcher.join(timeout=1)
    assert killed.get("pid"), "the job's worker was never killed"
    by_id = {row["id"]: row for row in rows}
    assert by_id["killed"]["status"] == by_id["straight"]["status"] == "done"
    assert by_id["straight"]["resumed_from"] == 0
    # the retry continued from a checkpoint of the killed run (one every 3 steps), in another process
    assert by_id["killed"]["resumed_from"] in (3, 6, 9)
    assert json.loads((out / "killed" / "worker.json").read_text())["pid"] != killed["pid"]
    assert by_id["killed"]["unet_calls"] == by_id["straight"]["unet_calls"]
    a = load_ply(out / "killed" / "asset.ply").state_dict()
    b = load_ply(out / "straight" / "asset.ply").state_dict()
    assert a.keys() == b.keys()
    for key in a:
        # Both runs use one torch thread in a Ray worker and the checkpoint restores every tensor and
        # the random generator, so they are equal up to float32 rounding; one Adam step moves a mean
        # by ~1e-3, so 1e-6 would catch any missed or repeated step.
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def _kill_after_first_checkpoint(folder, killed: dict, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (folder / "checkpoints" / "last.safetensors").is_file() and (folder / "worker.json").is_file():
            pid = json.loads((folder / "worker.json").read_text())["pid"]
            os.kill(pid, signal.SIGKILL)
            killed["pid"] = pid
            return
        time.sleep(0.02)
