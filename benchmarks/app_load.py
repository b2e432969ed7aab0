"""App load: N signed-in clients each submit M short runs through `/generate` of one `tv3dg app`,
some stopped midway through `/stop`; nothing may be lost or mixed up.

    python benchmarks/app_load.py [--clients 8] [--runs 2] [--steps 10] [--stop-every 3]
                                  [--out runs/app_load] [--results benchmarks/results/app_load.json]
                                  [key=value ...]

The app runs on 127.0.0.1 only (bundled mini prior, small exports, one account per client). Every
`--stop-every`-th run asks for `--stop-steps` steps and is stopped through `/stop` a few seconds
after it starts. It reports runs submitted, finished, cancelled (stopped, outputs still written)
and failed; lost (no result, or no run folder on the server) and mixed up (a result or folder that
is not the asking client's: other prompt, seed, owner or asset bytes); queue wait (submit -> the
run starts) and run time p50/p95; and the CPU and load average around the run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from app_server import FAST, local_app  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "app_load.json"
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "cyan")
SHAPES = ("cube", "sphere", "torus", "cone", "cylinder", "pyramid")
POLL_S = 0.05
STOP_AFTER_S = 3.0  # how long a run to be stopped runs before its client presses Stop
RUN_TIMEOUT_S = 1800
# gradio_client's own default, 5 s per HTTP call, expired once under a load average of 13 to 25
# (a queue join answered late; the server still ran the run): a client of a busy server waits longer.
CLIENT_TIMEOUT_S = 120


@dataclass
class Request:
    """One run a client asks for, and what came of it."""

    client: int
    user: str
    prompt: str
    seed: int
    steps: int
    stop: bool  # press Stop midway through this run
    queue_wait_s: float | None = None  # None: it started and ended between two looks at its status
    run_s: float | None = None
    outcome: str = "lost"  # finished, cancelled, failed or lost (no answer within RUN_TIMEOUT_S)
    received_asset: str | None = None  # sha256 of the asset.ply the client got back
    problems: list[str] = field(default_factory=list)  # "lost ...", "mixed up ..." or unreadable files
    error: str | None = None


def plan(clients: int, runs: int, steps: int, stop_every: int, stop_steps: int) -> list[Request]:
    requests = []
    for c in range(clients):
        for r in range(runs):
            index = c * runs + r
            stop = stop_every > 0 and index % stop_every == stop_every - 1
            prompt = f"a {COLOURS[index % len(COLOURS)]} {SHAPES[index % len(SHAPES)]} client{c} run{r}"
            requests.append(Request(c, f"client{c}", prompt, index, stop_steps if stop else steps, stop))
    return requests


def run_client(url: str, password: str, requests: list[Request]) -> None:
    """One client's runs, one after another (as one person at the page would)."""
    from gradio_client import Client
    from gradio_client.utils import Status

    client = Client(url, auth=(requests[0].user, password), verbose=False, httpx_kwargs={"timeout": CLIENT_TIMEOUT_S})
    for request in requests:
        submitted = time.monotonic()
        job = client.submit(request.prompt, None, "texture", "vpcsm", request.steps, request.seed, api_name="/generate")
        started, pressed = None, False
        while not job.done() and time.monotonic() - submitted < RUN_TIMEOUT_S:
            if started is None and job.status().code in (Status.PROCESSING, Status.PROGRESS):
                started = time.monotonic()
            if request.stop and started is not None and not pressed and time.monotonic() - started > STOP_AFTER_S:
                pressed = client.predict(api_name="/stop")
            time.sleep(POLL_S)
        if not job.done():
            continue  # lost
        if started is not None:
            request.queue_wait_s, request.run_s = started - submitted, time.monotonic() - started
        try:
            asset, mesh, turntable, views, metrics = job.result()
        except Exception as err:  # the app's one-line message: counted as failed, the other runs go on
            request.outcome, request.error = "failed", str(err)
            continue
        request.outcome = "cancelled" if metrics.get("interrupted") else "finished"
        if request.stop and not metrics.get("interrupted"):
            request.problems.append("Stop was pressed but the run was not stopped" if pressed
                                    else "the run ended before Stop was pressed")
        request.received_asset = hashlib.sha256(Path(asset).read_bytes()).hexdigest()
        request.problems += check_files(request, asset, mesh, turntable, views, metrics=metrics)


def check_files(request: Request, *files: str | None, metrics: dict) -> list[str]:
    """What is wrong with the files a client got back (asset, mesh, turntable, views): missing,
    unreadable, or another client's."""
    import imageio.v3 as iio
    import trimesh
    from PIL import Image

    from tv3dg.gaussians.ply import load_ply

    names = ("asset.ply", "mesh.glb", "turntable", "views.png")
    missing = [name for name, path in zip(names, files) if path is None or not Path(path).is_file()]
    if missing:
        return [f"lost: {', '.join(missing)} missing from the result"]
    asset, mesh, turntable, views = (Path(path) for path in files)
    problems = []
    if metrics["prompt"] != request.prompt:
        problems.append(f"mixed up: asked {request.prompt!r}, got the run of {metrics['prompt']!r}")
    if load_ply(asset).num_points != metrics["num_gaussians"]:
        problems.append("asset.ply does not hold the run's Gaussians")
    if len(trimesh.load(mesh, force="mesh").vertices) == 0:
        problems.append("mesh.glb is empty")
    with Image.open(views) as image:
        if image.size[0] == 0:
            problems.append("views.png is empty")
    if iio.imread(turntable, index=0).ndim != 3:
        problems.append("the turntable has no frame")
    return problems


def check_server_folders(runs: Path, requests: list[Request]) -> None:
    """Each returned run has exactly one folder on the server, made for its client: its prompt,
    seed and owner, and the asset bytes the client received."""
    import yaml

    folders: dict[str, list[Path]] = {}
    for folder in runs.iterdir():
        metrics = folder / "metrics.json"
        if metrics.is_file():
            folders.setdefault(json.loads(metrics.read_text())["prompt"], []).append(folder)
    for request in requests:
        if request.outcome not in ("finished", "cancelled"):
            continue
        found = folders.get(request.prompt, [])
        if len(found) != 1:
            request.problems.append(f"lost: {len(found)} run folders on the server for {request.prompt!r}")
            continue
        owner = json.loads((found[0] / "owner.json").read_text())["user"]
        seed = yaml.safe_load((found[0] / "config.yaml").read_text())["seed"]
        asset = hashlib.sha256((found[0] / "asset.ply").read_bytes()).hexdigest()
        if (owner, seed, asset) != (request.user, request.seed, request.received_asset):
            request.problems.append(f"mixed up: folder {found[0].name} (owner {owner}, seed {seed}) "
                                    f"{'holds' if asset == request.received_asset else 'does not hold'} "
                                    "the asset the client received")


def summarise(requests: list[Request], wall_s: float, load: dict, settings: dict) -> dict:
    waits = [r.queue_wait_s for r in requests if r.queue_wait_s is not None]
    run_times = [r.run_s for r in requests if r.run_s is not None and r.outcome == "finished"]

    def percentiles(values: list[float]) -> dict:
        if not values:
            return {}
        return {"p50": round(float(np.percentile(values, 50)), 2), "p95": round(float(np.percentile(values, 95)), 2),
                "max": round(max(values), 2)}

    count = {outcome: sum(r.outcome == outcome for r in requests) for outcome in ("finished", "cancelled", "failed")}
    lost = sum(r.outcome == "lost" or any(p.startswith("lost") for p in r.problems) for r in requests)
    mixed = sum(any(p.startswith("mixed up") for p in r.problems) for r in requests)
    return {
        **settings, "submitted": len(requests), **count, "lost": lost, "mixed_up": mixed,
        "other_problems": sorted({p for r in requests for p in r.problems
                                  if not p.startswith(("lost", "mixed up"))}),
        "failures": sorted({r.error for r in requests if r.error}),
        "queue_wait_s": percentiles(waits), "queue_wait_observed": len(waits),
        "finished_run_s": percentiles(run_times), "wall_s": round(wall_s, 1), **load,
        "requests": [asdict(r) for r in requests],
    }


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"cpu": model, "cores": len(os.sched_getaffinity(0)), "commit": commit}


def run_load(out: Path, clients: int, runs: int, steps: int, stop_every: int, stop_steps: int,
             overrides: list[str]) -> dict:
    """Start the app, run the clients against it, check every result; the summary as a dict."""
    out.mkdir(parents=True, exist_ok=True)
    requests = plan(clients, runs, steps, stop_every, stop_steps)
    password = "load-test-" + hashlib.sha256(os.urandom(16)).hexdigest()[:12]
    accounts = out / "accounts.txt"
    accounts.write_text("".join(f"client{c}:{password}\n" for c in range(clients)))
    runs_dir = out / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)  # a fresh app: each prompt names exactly one folder
    args = ["--auth-file", str(accounts), "--max-steps", str(max(steps, stop_steps)), *FAST, *overrides]
    load_before = os.getloadavg()
    with local_app(runs_dir, out / "app.log", *args) as url:
        started = time.monotonic()
        threads = [threading.Thread(target=run_client, args=(url, password, [r for r in requests if r.client == c]))
                   for c in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall_s = time.monotonic() - started
    check_server_folders(runs_dir, requests)
    load = {"loadavg_1min_before": load_before[0], "loadavg_1min_after": os.getloadavg()[0], **machine()}
    settings = {"clients": clients, "runs_per_client": runs, "steps": steps, "stop_every": stop_every,
                "stop_steps": stop_steps, "overrides": overrides}
    return summarise(requests, wall_s, load, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2, help="runs per client")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--stop-every", type=int, default=3, help="stop every k-th run midway (0: none)")
    parser.add_argument("--stop-steps", type=int, default=400, help="steps a run to be stopped asks for")
    parser.add_argument("--out", type=Path, default=Path("runs/app_load"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    summary = run_load(args.out, args.clients, args.runs, args.steps, args.stop_every, args.stop_steps, args.overrides)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "requests"}, indent=2))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
