"""`tv3dg batch --address` against a real two-node Ray cluster on 127.0.0.1, started with `ray start`
as a user would (the recipe in docs/batch.md): a head and a second node of 1 CPU each, so two 1-CPU
jobs must run one on each node. Authentication: `RAY_AUTH_MODE=disabled` for the nodes and the driver,
since current Ray turns token authentication on for `ray start --head` and the second node and the
driver would otherwise need the head's token; on loopback nothing outside this machine reaches it.

Each node runs `ray start --block` in its own process, which stops the node's processes when it is
sent SIGTERM: the test stops the nodes by those process ids, also when it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.ray]

RAY = Path(sys.executable).with_name("ray")
STARTED = "Ray runtime started"
START_ATTEMPTS = 3  # a node start that fails (see `_agent_ports`) is tried again, as a user would
FAST = [
    "steps=2", "sgc.enabled=false", "visual_prompt.sample_steps=2", "camera.views_per_step=1", "init.num_points=300",
    "export.turntable_frames=2", "export.turntable_resolution=32", "export.views=2", "export.mesh.resolution=24",
    "export.mesh.texture=false",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _agent_ports() -> list[str]:
    """Each node's agent ports, fixed: two nodes on one machine must not share them. (A raylet still waits
    for its agent to report them, for at most 15 s, hard-coded in Ray; on a machine loaded by other jobs
    the agent's Python start can take longer, the raylet exits and `ray start` fails after its 60 s wait,
    so a start is tried up to START_ATTEMPTS times.)"""
    flags = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
             "--runtime-env-agent-port")
    return [item for flag in flags for item in (flag, str(_free_port()))]


class Node:
    """One `ray start --block` process (in its own session), its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.process = self._start()

    def _start(self) -> subprocess.Popen:
        with self.log.open("w") as out:
            return subprocess.Popen([str(RAY), "start", *self.args, "--block"], env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def wait_started(self) -> None:
        """Until `ray start` says the node runs; a start that fails is tried again (see `_agent_ports`)."""
        for attempt in range(START_ATTEMPTS):
            if attempt:
                self.process = self._start()
            while STARTED not in self.log.read_text():
                if self.process.poll() is not None:
                    break
                time.sleep(0.5)
            else:
                return
        raise AssertionError(f"ray start failed {START_ATTEMPTS} times:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM to `ray start --block` stops the node's processes; its whole session if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path):
    """(address, environment, nodes, session folder) of a running head + second node; both stopped at the
    end, whatever happens."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    sessions = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must stay under 108 bytes
    port = _free_port()
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0"]
    nodes: list[Node] = []
    try:
        nodes.append(Node(["--head", "--port", str(port), *common, "--include-dashboard", "false", "--temp-dir",
                           str(sessions), "--ray-client-server-port", str(_free_port()), *_agent_ports()],
                          env, tmp_path / "head.log"))
        nodes[0].wait_started()
        nodes.append(Node(["--address", f"127.0.0.1:{port}", *common, *_agent_ports()], env, tmp_path / "node.log"))
        nodes[1].wait_started()
        yield f"127.0.0.1:{port}", env, nodes, str(sessions)
    finally:
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(sessions, ignore_errors=True)


def _batch(address: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tv3dg.cli", "batch", *args, "--address", address, "--quiet"],
                          env=env, capture_output=True, text=True, timeout=600)


def test_batch_on_a_two_node_cluster_runs_jobs_on_both_nodes(cluster, tmp_path):
    address, env, nodes, sessions = cluster
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"prompt": p, "id": p.replace(" ", "_")}) + "\n" for p in ("a red cube", "a blue torus")))
    # a job size no node holds is refused instead of waiting for ever
    refused = _batch(address, env, str(jobs), "--out", str(tmp_path / "refused"), "--cpus-per-job", "2")
    assert refused.returncode == 2 and "no node of the Ray cluster has 2 CPUs" in refused.stderr
    assert not (tmp_path / "refused").exists()

    done = _batch(address, env, str(jobs), "--out", str(tmp_path / "out"), "--cpus-per-job", "1", *FAST)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 of 2 jobs done" in done.stdout
    rows = [json.loads(line) for line in (tmp_path / "out" / "index.jsonl").read_text().splitlines()]
    assert [row["status"] for row in rows] == ["done", "done"]
    assert len({row["node"] for row in rows}) == 2 and all(rows[i]["node"] for i in range(2))  # one job per 1-CPU node
    for row in rows:
        assert (Path(row["out"]) / "asset.ply").is_file()  # both nodes share this machine's file system

    for node in nodes:
        node.stop()
        assert node.process.returncode is not None
    with pytest.raises(ConnectionRefusedError):  # the head's GCS port is closed: the cluster is gone
        socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])), timeout=10).close()
    assert not _processes_mentioning(sessions)  # and no process of either node is left


def _processes_mentioning(text: str) -> list[int]:
    """Ids of the processes whose command line contains `text` (Ray passes its session folder to each)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:  # the process ended while being read
            continue
    return found
