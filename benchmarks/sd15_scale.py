"""Cost of one `generate --config sd15` step at SD-1.5 + IP-Adapter's real size, per loss.

    python benchmarks/sd15_scale.py --device cpu|cuda --resolution R --views V --steps N \
        --losses vpcsm csm ism sds --json OUT.json

Runs the `sd15` preset through `tv3dg.pipeline.run.generate` on random weights of the exact
SD-1.5 / ViT-H / IP-Adapter architecture (built once into --weights by
`tv3dg.priors.random_weights`; counts checked against the published ones), N steps per loss,
each loss in its own process so that its peak memory is its own. Per loss it reports seconds
per step (median of the steps after the first), UNet calls and rows per step (set-up sampling
excluded), peak CPU RSS, peak CUDA memory and the UNet's parameter count.

What differs from the preset, and why: renders and the prior both run at R px (`camera.resolution`
and `prior.resolution`, so R=64 means 8x8 latents); SGC is active from step 0 (its steady-state
cost is part of a step; the preset starts it at step 500) with 1-step reference samples (set-up
cost only); the visual prompt is an example image (no Func Switch sample); the initial Gaussians are the
preset's 20000 in a sphere (Shap-E is a one-off set-up cost); ISM uses 5 inversion
moves to s, as LucidDreamer does (the preset's 3 for CSM/VPCSM); exports are tiny. Random
weights give meaningless images but the real shapes, dtypes and costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import command_line, describe_machine

from tv3dg.commands.arguments import IntermixedParser, add_overrides
from tv3dg.distill.objectives import LOSS_NAMES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = Path.home() / ".cache" / "tv3dg" / "sd15_random"
IMAGE = ROOT / "examples" / "blue_checkered_sphere.png"
PER_LOSS = {"ism": ["distill.inversion_steps=5"]}  # LucidDreamer's ISM: 5 inversion moves to s


def ensure_weights(folder: Path) -> list[str]:
    """Build the full-size random folders once; returns the parameter-count report."""
    from tv3dg.priors.random_weights import write_random_sd15

    marker = folder / "parameters.json"
    if marker.is_file():
        return json.loads(marker.read_text())["report"]
    start = time.perf_counter()
    weights = write_random_sd15(folder)
    report = weights.count_report()
    marker.write_text(json.dumps({"parameters": weights.parameters, "report": report}, indent=2))
    print(f"built random SD-1.5 + IP-Adapter weights in {time.perf_counter() - start:.0f} s:", *report, sep="\n  ")
    return report


def run_one(args: argparse.Namespace, loss: str) -> dict:
    """One loss, N steps, in this process (called in a child process by `main`)."""
    import torch

    from tv3dg.pipeline.config import build_config
    from tv3dg.pipeline.run import generate

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.weights)
    dtype = args.dtype or ("float16" if args.device == "cuda" else "float32")
    flags = {"prompt": "a DSLR photo of a corgi", "image": str(IMAGE), "prior": {
        "model": str(folder / "stable-diffusion-v1-5"),
        "ip_adapter": str(folder / "IP-Adapter" / "models" / "ip-adapter_sd15.safetensors"),
    }}
    overrides = [
        f"steps={args.steps}", f"prior.device={args.device}", f"prior.dtype={dtype}", f"distill.loss={loss}",
        f"camera.resolution={args.resolution}", f"prior.resolution={args.resolution}", f"camera.views_per_step={args.views}",
        f"sgc.enabled={str(not args.no_sgc).lower()}", "sgc.start_step=0", "sgc.sample_steps=1", "init.kind=sphere",
        f"checkpoint_every={args.steps + 1}", "export.turntable_frames=2", "export.turntable_resolution=64",
        "export.views=2", "export.mesh.resolution=32", *PER_LOSS.get(loss, []), *args.overrides,
    ]
    config = build_config("sd15", flags, overrides)
    ends: list[float] = []

    def on_step(step: int, logs: dict, gaussians: object) -> None:
        if args.device == "cuda":
            torch.cuda.synchronize()
        ends.append(time.perf_counter())

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = generate(config, out, progress=False, on_step=on_step)
    times = [b - a for a, b in zip(ends, ends[1:])]  # steps 2..N: the first carries one-off warm-up
    metrics = result.metrics
    unet = metrics["unet"]
    return {
        "loss": loss,
        "seconds_per_step": statistics.median(times) if times else None,
        "step_seconds": times,
        "loop_seconds": metrics["time_s"],  # every step, the first included (set-up and exports excluded)
        "unet_calls_per_step": unet["calls_per_step"],
        "unet_rows_per_step": unet["rows_per_step"],
        "setup_unet_calls": unet["setup_calls"],
        "peak_cpu_rss_gib": metrics["peak_memory_mb"]["cpu_rss"] / 1024,
        "peak_cuda_gib": metrics["peak_memory_mb"].get("cuda_allocated", 0.0) / 1024 or None,
        "unet_parameters": json.loads((folder / "parameters.json").read_text())["parameters"]["unet"],
        "total_seconds": time.perf_counter() - started,
        "dtype": dtype,
        "inversion_steps": config.distill.inversion_steps,
    }


def table(rows: list[dict]) -> str:
    lines = ["| loss | s/step | UNet calls/step | UNet rows/step | peak CPU RSS | peak CUDA |", "|---|---|---|---|---|---|"]
    for r in rows:
        step = f"{r['seconds_per_step']:.2f}" if r["seconds_per_step"] is not None else f"{r['loop_seconds']:.1f} (first step)"
        cuda = f"{r['peak_cuda_gib']:.1f} GiB" if r["peak_cuda_gib"] else "-"
        lines.append(f"| {r['loss']} | {step} | {r['unet_calls_per_step']:g} | {r['unet_rows_per_step']:g} | "
                     f"{r['peak_cpu_rss_gib']:.1f} GiB | {cuda} |")
    return "\n".join(lines)


def main() -> None:
    parser = IntermixedParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], required=True)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--losses", nargs="+", choices=LOSS_NAMES, default=["vpcsm", "csm", "ism", "sds"])
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="default: float16 on cuda, float32 on cpu")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="random-weight folders (built when missing)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--no-sgc", action="store_true", help="switch SGC off (default: on from step 0)")
    add_overrides(parser, "camera.fov_deg=[40, 40]")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args, args.child)))
        return
    report = ensure_weights(args.weights)
    rows: list[dict] = []
    result = {
        "command": command_line(__file__),
        "machine": describe_machine(args.device), "device": args.device, "resolution": args.resolution, "views": args.views,
        "steps": args.steps, "threads": args.threads, "parameters": report, "losses": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for loss in args.losses:
        command = [sys.executable, __file__, *sys.argv[1:], "--child", loss]
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        args.json.write_text(json.dumps(result, indent=2) + "\n")  # after every loss: a failure keeps the others
        print(f"{loss}: {rows[-1]['seconds_per_step']} s/step, {rows[-1]['peak_cpu_rss_gib']:.1f} GiB RSS", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
