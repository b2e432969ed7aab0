"""Start `tv3dg app` (the real command, bundled mini prior) on a free port of 127.0.0.1 and wait
until it answers; shared by the app's server tests and `app_load.py`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

# Smaller exports than the preset's, set the way a user would: key=value on the command line.
FAST = ["export.turntable_frames=8", "export.turntable_resolution=64", "export.mesh.resolution=48",
        "export.mesh.texture_resolution=128", "export.mesh.bake_resolution=64",
        "visual_prompt.sample_steps=10", "sgc.sample_steps=10"]
# What the tests add to FAST: the UV unwrap (xatlas) of the default 20000-face mesh takes about 4 s
# a run, of a 4000-face one 0.2 s (measured on a 48^3 marching-cubes cube, one thread).
SMALL_MESH = "export.mesh.target_faces=4000"
START_TIMEOUT_S = 600  # a shared, busy machine (load 20 on 2 cores) took 160 s and more to start it


class AppDidNotStart(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_app(runs: Path, log: Path, *args: str, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `tv3dg app --host 127.0.0.1 --runs runs *args` (output to `log`); yields its URL and
    stops it on exit. `env` adds to this process's environment."""
    port = free_port()
    full_env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", **(env or {}))
    with open(log, "w+") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tv3dg.cli", "app", "--host", "127.0.0.1", "--port", str(port),
             "--runs", str(runs), *args], stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_until_up(url, process, out)
            yield url
        finally:
            process.terminate()
            process.wait(30)


def _wait_until_up(url: str, process: subprocess.Popen, out) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # the page shell answers with or without sign-in
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                out.seek(0)
                raise AppDidNotStart(f"tv3dg app did not start:\n{out.read()[-3000:]}") from None
            time.sleep(0.5)
