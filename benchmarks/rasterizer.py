"""Forward + backward time and peak memory of the rasterizer (prints a table; asserts nothing).

    python benchmarks/rasterizer.py                    # CPU, torch backend, both scenes
    python benchmarks/rasterizer.py --device cuda --backend gsplat

Scenes (one camera, 3 m away, 40 degree FOV, SH degree 3, seed 0):
- "object": N Gaussians filling a ball of radius 1 (the scale of a tv3dg object), anisotropic
  scales log-normal around half the mean spacing, opacities sigmoid(N(0, 1)) - an asset in training;
- "init": the same with every opacity 0.1, as at initialisation: nothing is opaque, so early
  termination never triggers (the slow case).
Each configuration runs in a fresh process; the time is the median of `--repeats` runs after two
warm-ups; memory is the peak resident-set growth over the process before rendering (CPU) or
`torch.cuda.max_memory_allocated` (CUDA).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import resource
import statistics
import time

import torch

from machine import command_line, describe_machine

from tv3dg.gaussians.model import Gaussians
from tv3dg.render.cameras import orbit_cameras
from tv3dg.render.rasterizer import RasterSettings, rasterize

SIZES = (1000, 4000, 16000)
RESOLUTIONS = (64, 128)


def scene(n: int, opacity: float | None, device: str) -> Gaussians:
    gen = torch.Generator().manual_seed(0)
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
    means = direction * torch.rand(n, 1, generator=gen) ** (1 / 3)
    spacing = (4 / 3 * math.pi / n) ** (1 / 3)
    logits = torch.randn(n, 1, generator=gen) if opacity is None else torch.full((n, 1), math.log(opacity / (1 - opacity)))
    return Gaussians(
        means=means,
        log_scales=math.log(0.5 * spacing) + 0.3 * torch.randn(n, 3, generator=gen),
        quats=torch.randn(n, 4, generator=gen),
        opacity_logits=logits,
        sh_dc=0.5 * torch.randn(n, 1, 3, generator=gen),
        sh_rest=0.1 * torch.randn(n, 15, 3, generator=gen),
    ).to(device)


def measure(args: tuple) -> tuple[float, float]:
    """(median seconds, peak MB) of forward+backward for one configuration, in this process."""
    n, resolution, opacity, device, backend, threads, repeats, settings = args
    torch.set_num_threads(threads)
    gaussians = scene(n, opacity, device)
    cameras = orbit_cameras(20.0, 30.0, 3.0, 40.0, resolution, device=device)
    background = torch.ones(3, device=device)

    def step() -> None:
        out = rasterize(gaussians, cameras, background, backend=backend, settings=settings)
        (out.rgb.mean() + out.depth.mean()).backward()
        gaussians.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024  # ru_maxrss is in KiB
    return statistics.median(times), peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch", choices=["auto", "torch", "gsplat"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--tile-size", type=int, default=RasterSettings.tile_size)
    parser.add_argument("--chunk", type=int, default=RasterSettings.chunk)
    parser.add_argument("--scenes", nargs="+", default=["object", "init"], choices=["object", "init"])
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    settings = RasterSettings(tile_size=args.tile_size, chunk=args.chunk)
    print(f"{command_line(__file__)}\nmachine: {describe_machine(args.device)}")
    print(f"rasterizer forward+backward, backend={args.backend}, device={args.device}, threads={args.threads}, "
          f"tile {args.tile_size}, chunk {args.chunk}")
    print("| scene | Gaussians | 64x64 | 128x128 |")
    print("|---|---|---|---|")
    for name in args.scenes:
        opacity = None if name == "object" else 0.1
        for n in SIZES:
            cells = []
            for resolution in RESOLUTIONS:
                with context.Pool(1) as pool:
                    seconds, peak = pool.apply(
                        measure, ((n, resolution, opacity, args.device, args.backend, args.threads, args.repeats, settings),)
                    )
                cells.append(f"{seconds * 1000:.0f} ms, {peak:.0f} MB")
            print(f"| {name} | {n // 1000}k | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
