"""Jobs files for `tv3dg batch`: parsing, precedence of overrides, stable ids, one-line errors (no Ray needed)."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from tv3dg.batch import runner
from tv3dg.batch.jobs import load_jobs
from tv3dg.batch.task import JobOutcome
from tv3dg.cli import main
from tv3dg.errors import UserError


def _jsonl(path, *jobs):
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


def test_a_txt_file_is_one_prompt_a_line(tmp_path):
    jobs = load_jobs(_txt(tmp_path / "p.txt", "a red cube\n\n# a comment\na blue torus\n"))
    assert [job.prompt for job in jobs] == ["a red cube", "a blue torus"]
    assert jobs[0].id.startswith("a-red-cube-") and len(jobs[0].id) == len("a-red-cube-") + 8
    assert jobs[0].config.steps == 400  # the mini preset


def _txt(path, text):
    path.write_text(text)
    return path


def test_the_same_job_gets_the_same_id_and_another_config_another(tmp_path):
    first = load_jobs([{"prompt": "a red cube", "seed": 1}])[0]
    again = load_jobs([{"prompt": "a red cube", "seed": 1}])[0]
    other = load_jobs([{"prompt": "a red cube", "seed": 2}])[0]
    assert first.id == again.id != other.id
    assert load_jobs([{"prompt": "a red cube", "id": "mine"}])[0].id == "mine"


def test_the_jobs_own_fields_and_overrides_beat_the_command_lines(tmp_path):
    jobs = _jsonl(tmp_path / "jobs.jsonl",
                  {"prompt": "a red cube"},
                  {"prompt": "a red cube", "steps": 7, "mode": "style", "loss": "csm", "seed": 3, "tags": {"k": 1}},
                  {"prompt": "a red cube", "steps": 7, "overrides": ["steps=9", "sgc.enabled=false"]},
                  {"prompt": "a red cube", "image": "ref.png", "config": "sd15"})
    a, b, c, d = load_jobs(jobs, overrides=["steps=5", "distill.loss=sds"])
    assert (a.config.steps, a.config.distill.loss) == (5, "sds")
    assert (b.config.steps, b.config.distill.loss, b.config.prior.ip_mode, b.config.seed) == (7, "csm", "style", 3)
    assert b.tags == {"k": 1}
    assert c.config.steps == 9 and c.config.sgc.enabled is False
    assert d.config.image == str(tmp_path / "ref.png")  # relative to the jobs file's folder
    assert d.config.prior.model != "mini"


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"prompt": "a cube", "colour": "red"}', "jobs.jsonl:2: unknown job key 'colour'"),
        ('{"image": "x.png"}', "jobs.jsonl:2: the job has no 'prompt'"),
        ('{"prompt": "a cube", "seed": "1"}', "jobs.jsonl:2: job key 'seed' must be a int"),
        ('{"prompt": "a cube", "overrides": "steps=3"}', "jobs.jsonl:2: job key 'overrides' must be a list"),
        ('{"prompt": "a cube", "overrides": ["camera.resolutoin=8"]}', "jobs.jsonl:2: unknown config key 'camera.resolutoin'"),
        ('{"prompt": "a cube", "mode": "paint"}', "jobs.jsonl:2: config key 'prior.ip_mode' must be one of"),
        ('{"prompt": "a cube", "id": "../x"}', "jobs.jsonl:2: id '../x' must be a folder name"),
        ('{"prompt": "a red cube"}', "jobs.jsonl:2: job id 'a-red-cube-"),
        ('{"prompt": "a cube"', "jobs.jsonl:2: not valid JSON"),
    ],
)
def test_a_bad_line_is_one_error_naming_its_line(tmp_path, line, message):
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"prompt": "a red cube"}\n' + line + "\n")
    with pytest.raises(UserError) as err:
        load_jobs(path)
    assert message in str(err.value) and len(str(err.value).splitlines()) == 1


def test_the_command_line_reports_a_bad_jobs_file_in_one_line_before_starting_ray(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # nothing may reach Ray when the jobs file is wrong
    path = _jsonl(tmp_path / "jobs.jsonl", {"prompt": "a cube", "colour": "red"})
    assert main(["batch", str(path), "--out", str(tmp_path / "out"), "steps=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "jobs.jsonl:1: unknown job key 'colour'" in err and len(err.splitlines()) == 1


def test_without_ray_the_command_names_the_extra_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    path = _txt(tmp_path / "jobs.txt", "a red cube\n")
    assert main(["batch", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'tv3dg[batch]'" in capsys.readouterr().err


def test_overrides_may_come_after_options(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("tv3dg.batch.runner.run_batch", lambda jobs, out, **kw: seen.update(kw) or [])
    main(["batch", "jobs.txt", "steps=3", "--out", str(tmp_path), "seed=2", "--cpus-per-job", "2", "seed=4"])
    assert seen["overrides"] == ["steps=3", "seed=2", "seed=4"] and seen["cpus_per_job"] == 2


class _RayThatGetsSigterm:
    """Ray as the batch driver uses it, on one process: each wait finishes one job, and a SIGTERM
    (as Slurm or Kubernetes send at a time limit) arrives during the second wait."""

    def __init__(self) -> None:
        self.waits, self.cancelled = 0, []

    def is_initialized(self) -> bool:
        return True

    def remote(self, *args):
        """`ray.remote(run_job)` gives the task (this object); `task.options(...).remote(job...)` a reference."""
        return self if len(args) == 1 and callable(args[0]) else object()

    def options(self, **options):
        return self

    def cluster_resources(self) -> dict:
        return {"CPU": 2}

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": {"CPU": 2}}]

    def wait(self, refs, num_returns, timeout):
        self.waits += 1
        if self.waits == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return refs[:1], refs[1:]

    def get(self, ref):
        return JobOutcome("done", wall_s=1.5)

    def cancel(self, ref, force):
        self.cancelled.append(ref)


def test_sigterm_stops_a_batch_like_ctrl_c_and_keeps_the_index_of_what_finished(tmp_path, monkeypatch):
    fake = _RayThatGetsSigterm()
    monkeypatch.setattr(runner, "import_ray", lambda: fake)
    jobs = _jsonl(tmp_path / "jobs.jsonl", *({"prompt": p} for p in ("a red cube", "a blue torus", "a green cone")))
    before = signal.getsignal(signal.SIGTERM)
    assert main(["batch", str(jobs), "--out", str(tmp_path / "out"), "--quiet"]) == 130
    rows = [json.loads(line) for line in (tmp_path / "out" / "index.jsonl").read_text().splitlines()]
    assert [row["status"] for row in rows] == ["done", "failed", "failed"]
    assert rows[0]["wall_s"] == 1.5 and rows[1]["reason"] == runner.INTERRUPTED
    assert len(fake.cancelled) == 2
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the batch's only while it runs


class _RayWithOneNode:
    """An attached Ray cluster of one alive node with 2 CPUs and no GPU (and a dead node with more)."""

    def is_initialized(self) -> bool:
        return True

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 1.0}}]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--cpus-per-job", "0"], "--cpus-per-job must be a positive number (e.g. 1), got 0"),
        (["--cpus-per-job", "-1"], "--cpus-per-job must be a positive number (e.g. 1), got -1"),
        (["--cpus-per-job", "nan"], "--cpus-per-job must be a positive number (e.g. 1), got nan"),
        (["--cpus-per-job", "inf"], "--cpus-per-job must be a positive number (e.g. 1), got inf"),
        (["--gpus-per-job", "-0.5"], "--gpus-per-job must be 0 or a positive number (e.g. 1 or 0.5), got -0.5"),
        (["--gpus-per-job", "nan"], "--gpus-per-job must be 0 or a positive number (e.g. 1 or 0.5), got nan"),
        (["--max-retries", "-1"], "--max-retries must be 0 or more, got -1"),
        # sizes no alive node can hold: Ray would wait for them forever
        (["--cpus-per-job", "3"], "no node of the Ray cluster has 3 CPUs and 0 GPUs for one job (the largest has 2 CPUs "
                                  "and 0 GPUs); lower --cpus-per-job or --gpus-per-job"),
        (["--gpus-per-job", "1"], "no node of the Ray cluster has 1 CPUs and 1 GPUs"),
    ],
    ids=["cpus-zero", "cpus-negative", "cpus-nan", "cpus-inf", "gpus-negative", "gpus-nan", "retries", "cpus-too-many",
         "gpus-none-there"],
)
def test_job_sizes_ray_cannot_place_are_one_line_errors_before_anything_is_written(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.setattr(runner, "import_ray", lambda: _RayWithOneNode())
    (tmp_path / "jobs.txt").write_text("a red cube\n")
    assert main(["batch", str(tmp_path / "jobs.txt"), "--out", str(tmp_path / "out"), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_job_size_that_fits_one_node_passes_the_check():
    runner.check_fits_a_node(_RayWithOneNode(), 2, 0)  # exactly the node's CPUs
    runner.check_fits_a_node(_RayWithOneNode(), 0.5, None)
