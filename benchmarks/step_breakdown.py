"""Where one step of `tv3dg generate` spends its time (prints a table; asserts nothing).

    python benchmarks/step_breakdown.py                          # default run: mini preset, 400 steps
    python benchmarks/step_breakdown.py --steps 100 sgc.enabled=false
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/step_breakdown.py   # another commit

It builds the run exactly as `tv3dg generate --prompt "a red striped cube"` does (same preset,
seed and set-up), then drives `Generation.train_step` for `--steps` steps with timers wrapped
around the pieces the loop calls. Each row is exclusive time (a nested timer's time is not
counted again in its parent); "other" is the rest of the step (cameras, conditions, losses'
arithmetic, autograd bookkeeping). Two columns: wall-clock seconds, and the CPU time of the
main thread, which with one torch thread is the work itself and varies much less than the wall
clock on a machine shared with other jobs. Only the timers' names are looked up, so the script
runs against older checkouts too.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch

from machine import command_line, describe_machine

ROWS = (
    "unet: inversion",
    "unet: teacher call",
    "vae",
    "rasterizer fwd",
    "rasterizer bwd (compositing)",
    "backward, rest (projection, SH, SGC encoder)",
    "sgc (image encoder + loss)",
    "optimiser + densify",
    "other",
)


class Timers:
    """Exclusive wall and thread-CPU time per row, for nested sections."""

    def __init__(self, device: torch.device) -> None:
        self.wall = dict.fromkeys(ROWS, 0.0)
        self.cpu = dict.fromkeys(ROWS, 0.0)
        self.stack: list[list[float]] = []  # per open section: [wall children, cpu children]
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    @contextmanager
    def section(self, row: str) -> Iterator[None]:
        self.sync()
        wall, cpu = time.perf_counter(), time.thread_time()
        self.stack.append([0.0, 0.0])
        try:
            yield
        finally:
            self.sync()
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            children = self.stack.pop()
            self.wall[row] += wall - children[0]
            self.cpu[row] += cpu - children[1]
            if self.stack:
                self.stack[-1][0] += wall
                self.stack[-1][1] += cpu

    def wrap(self, owner: object, name: str, row: str | Callable[..., str]) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            with self.section(row(*args, **kwargs) if callable(row) else row):
                return original(*args, **kwargs)

        setattr(owner, name, timed)


def unet_row(prior, latents, timestep, conditions, branches) -> str:
    return "unet: inversion" if tuple(branches) == ("empty",) else "unet: teacher call"


def instrument(timers: Timers, generation) -> None:
    from tv3dg.pipeline import run as run_module
    from tv3dg.priors.diffusers_prior import DiffusersPrior
    from tv3dg.render import composite

    timers.wrap(DiffusersPrior, "predict_noise", unet_row)
    timers.wrap(DiffusersPrior, "encode_images", "vae")
    timers.wrap(DiffusersPrior, "decode_latents", "vae")
    timers.wrap(run_module, "rasterize", "rasterizer fwd")
    timers.wrap(composite, "_backward", "rasterizer bwd (compositing)")
    timers.wrap(torch.Tensor, "backward", "backward, rest (projection, SH, SGC encoder)")
    timers.wrap(type(generation.optimizer), "step", "optimiser + densify")
    timers.wrap(type(generation.densify), "step_post_backward", "optimiser + densify")
    if generation.calibration is not None:
        timers.wrap(type(generation.calibration), "loss", "sgc (image encoder + loss)")
    timers.wrap(generation, "train_step", "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default="a red striped cube")
    parser.add_argument("--config", default="mini", help="preset or YAML file (default mini)")
    parser.add_argument("--steps", type=int, help="steps to run (default: the config's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--cprofile", type=Path, help="also write a cProfile of the loop to this file")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. seed=1")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import tv3dg
    from tv3dg.pipeline.config import build_config
    from tv3dg.pipeline.run import Generation

    config = build_config(args.config, {"prompt": args.prompt}, args.overrides)
    steps = args.steps or config.steps
    with tempfile.TemporaryDirectory(prefix="tv3dg-breakdown-") as out:
        started = time.perf_counter()
        generation = Generation(config, Path(out), resume=False, progress=False, overwrite=True)
        setup_s = time.perf_counter() - started
        timers = Timers(generation.prior.device)
        instrument(timers, generation)
        profiler = cProfile.Profile() if args.cprofile else None
        calls_before = generation.prior.counter.calls
        started, cpu_started = time.perf_counter(), time.thread_time()
        if profiler:
            profiler.enable()
        for step in range(steps):
            generation.train_step(step)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).dump_stats(str(args.cprofile))
        loop_s, loop_cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        unet_calls = generation.prior.counter.calls - calls_before
        gaussians = generation.gaussians.num_points

    print(f"{command_line(__file__)}\nmachine: {describe_machine()} at the end")
    print(f"tv3dg from {Path(tv3dg.__file__).parent}; config {args.config}, prompt {args.prompt!r}, "
          f"overrides {args.overrides or 'none'}; {steps} steps; torch threads {torch.get_num_threads()}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"set-up {setup_s:.1f} s; loop {loop_s:.1f} s wall, {loop_cpu:.1f} s CPU; "
          f"{unet_calls / steps:.2f} UNet calls/step; {gaussians} Gaussians at the end\n")
    print(f"| {'part of a step':44s} | wall ms/step | share | CPU ms/step | share |")
    print(f"|{'-' * 46}|-------------:|------:|------------:|------:|")
    total_wall, total_cpu = sum(timers.wall.values()), sum(timers.cpu.values())
    for row in ROWS:
        wall, cpu = timers.wall[row], timers.cpu[row]
        print(f"| {row:44s} | {1000 * wall / steps:12.1f} | {100 * wall / total_wall:4.0f}% "
              f"| {1000 * cpu / steps:11.1f} | {100 * cpu / total_cpu:4.0f}% |")
    print(f"| {'total':44s} | {1000 * total_wall / steps:12.1f} |  100% | {1000 * total_cpu / steps:11.1f} |  100% |")


if __name__ == "__main__":
    main()
