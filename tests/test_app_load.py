"""The app load benchmark's small form: 4 signed-in clients x 1 run of 5 steps through `/generate`,
one stopped midway through `/stop`; every result is there, readable, and the asking client's."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from app_load import run_load  # noqa: E402
from app_server import SMALL_MESH  # noqa: E402

pytestmark = pytest.mark.slow


def test_four_clients_lose_nothing_and_get_only_their_own_runs(tmp_path):
    summary = run_load(tmp_path, clients=4, runs=1, steps=5, stop_every=3, stop_steps=400, overrides=[SMALL_MESH])
    assert summary["failures"] == [] and summary["other_problems"] == []
    assert (summary["submitted"], summary["finished"], summary["cancelled"], summary["failed"]) == (4, 3, 1, 0)
    assert summary["lost"] == 0 and summary["mixed_up"] == 0
    assert [(r["client"], r["outcome"]) for r in summary["requests"] if r["stop"]] == [(2, "cancelled")]
    assert len(list((tmp_path / "runs").iterdir())) == 4
