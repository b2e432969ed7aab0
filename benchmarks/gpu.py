"""The GPU side of tv3dg in one command: CUDA tests, rasterizers, the sd15 preset's steps, Shap-E and a
200-step generate, written as JSON and a markdown table.

    python benchmarks/gpu.py --json benchmarks/results/gpu_h100.json        # on a GPU, about 8 minutes
    python benchmarks/gpu.py --device cpu --resolution 64 --views 1 --json /tmp/gpu_smoke.json   # CI smoke run

Stages (each is timed; a failing stage is recorded with its error and the others still run; the
JSON is rewritten after every stage):
1. `cuda_tests`: tests/test_rasterizer_cuda.py (torch rasterizer on CUDA, gsplat backend), via pytest;
2. `rasterizers`: `--gaussians` Gaussians (the "object" scene of benchmarks/rasterizer.py) at
   R px x V views, forward + backward with the torch backend and with gsplat, and how far their
   images are apart (`tv3dg.render.parity`);
3. `sd15_steps`: the sd15 preset on random weights of SD-1.5 + IP-Adapter SD-1.5's real
   architecture (benchmarks/sd15_scale.py, one process per loss), seconds per step for each of
   `--losses`, peak CUDA memory beside `tv3dg doctor`'s estimate for the same settings;
4. `shap_e`: diffusers' `ShapEPipeline` at openai/shap-e's real size with random weights
   (prior transformer, CLIP ViT-L text encoder, renderer), text -> latent in `--shap-e-steps`
   steps, then the mesh on a `--shap-e-grid` grid (random weights: the mesh is meaningless,
   often empty; the cost is what is measured);
5. `generate`: `--generate-steps` steps of the sd15 preset (sphere init: random Shap-E weights give
   no shape), the loop time extrapolated to the preset's 3000 steps. Densification (from step
   300) and SGC (from step 500) do not start within 200 steps, so the extrapolation is a floor.

Random weights give meaningless images but the real shapes, dtypes, memory and time. The
weights are built once into `--weights` (about 3.4 GB in float16).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import torch

from rasterizer import scene
from machine import describe_machine
from sd15_scale import IMAGE, ensure_weights
from tv3dg.commands.arguments import IntermixedParser, add_overrides
from tv3dg.distill.objectives import LOSS_NAMES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = Path.home() / ".cache" / "tv3dg" / "sd15_random"


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None


def cuda_tests(args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_rasterizer_cuda.py"]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return {"exit_status": done.returncode, "summary": summary, "passed": done.returncode in (0, 5)}


def time_fn(fn: Callable[[], None], device: str, repeats: int) -> float:
    """Median seconds of `fn` after one warm-up."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rasterizers(args: argparse.Namespace) -> dict:
    from tv3dg.render.cameras import turntable_cameras
    from tv3dg.render.parity import backend_parity
    from tv3dg.render.rasterizer import gsplat_available, rasterize

    gaussians = scene(args.gaussians, None, args.device)
    cameras = turntable_cameras(args.views, 20.0, 3.0, 40.0, args.resolution, device=args.device)
    background = torch.ones(3, device=args.device)
    result: dict = {"gaussians": args.gaussians, "resolution": args.resolution, "views": args.views}
    backends = ["torch"] + (["gsplat"] if args.device == "cuda" and gsplat_available() else [])
    for backend in backends:
        def step(backend: str = backend) -> None:
            gaussians.zero_grad(set_to_none=True)
            out = rasterize(gaussians, cameras, background, backend=backend)
            (out.rgb.sum() + out.depth.sum()).backward()

        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        result[f"{backend}_seconds"] = time_fn(step, args.device, args.repeats)
        result[f"{backend}_peak_gib"] = peak_gib(args.device)
    if "gsplat" in backends:
        parity = backend_parity(gaussians, cameras, background)
        result["parity"] = {"mean_abs_rgb": parity.rgb, "mean_abs_alpha": parity.alpha, "visible_differs": parity.visible,
                            "agrees": parity.agrees}
    else:
        result["gsplat"] = "not run: gsplat needs CUDA and `pip install 'tv3dg[gpu]'`"
    return result


def estimated_gib(args: argparse.Namespace, loss: str) -> float:
    """`tv3dg doctor`'s estimate for the settings sd15_scale.py runs."""
    from tv3dg.pipeline.config import build_config
    from tv3dg.pipeline.memory import estimate_memory, shapes_from_folders
    from tv3dg.priors.weight_checks import read_safetensors_header

    weights = Path(args.weights)
    model = weights / "stable-diffusion-v1-5"
    adapter = weights / "IP-Adapter" / "models" / "ip-adapter_sd15.safetensors"
    config = build_config("sd15", {"prompt": "x", "image": str(IMAGE)}, [
        f"prior.dtype={args.dtype}", f"distill.loss={loss}", f"camera.resolution={args.resolution}",
        f"prior.resolution={args.resolution}", f"camera.views_per_step={args.views}", "init.kind=sphere"])
    shapes = shapes_from_folders(model, read_safetensors_header(adapter).parameters, adapter.parent / "image_encoder")
    return estimate_memory(config, shapes, cuda=args.device == "cuda").gib()


def sd15_steps(args: argparse.Namespace) -> dict:
    rows = []
    for loss in args.losses:
        command = [sys.executable, str(ROOT / "benchmarks" / "sd15_scale.py"), "--device", args.device,
                   "--resolution", str(args.resolution), "--views", str(args.views), "--steps", str(args.steps),
                   "--dtype", args.dtype, "--weights", str(args.weights), "--json", "unused.json", *args.overrides,
                   "--child", loss]
        done = subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["estimated_gib"] = estimated_gib(args, loss)
        rows.append(row)
    return {"losses": rows}


def shap_e(args: argparse.Namespace) -> dict:
    from tv3dg.init.random_shap_e import random_shap_e_pipeline

    dtype = torch.float16 if args.device == "cuda" else torch.float32
    start = time.perf_counter()
    pipeline = random_shap_e_pipeline(args.device, dtype, args.shap_e_layers)
    parameters = {name: sum(p.numel() for p in getattr(pipeline, name).parameters())
                  for name in ("prior", "text_encoder", "shap_e_renderer")}
    build = time.perf_counter() - start
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with torch.no_grad():
        latents = pipeline("a DSLR photo of a corgi", guidance_scale=15.0, num_inference_steps=args.shap_e_steps,
                           output_type="latent").images
        synchronize(args.device)
        sampled = time.perf_counter()
        mesh = pipeline.shap_e_renderer.decode_to_mesh(latents[0][None], args.device, grid_size=args.shap_e_grid)
    synchronize(args.device)
    return {"parameters": parameters, "build_seconds": build, "steps": args.shap_e_steps, "grid": args.shap_e_grid,
            "sample_seconds": sampled - start, "mesh_seconds": time.perf_counter() - sampled,
            "seconds": time.perf_counter() - start, "peak_gib": peak_gib(args.device),
            "mesh_vertices": int(len(mesh.verts)), "dtype": str(dtype).removeprefix("torch.")}


def generate_run(args: argparse.Namespace) -> dict:
    from tv3dg.pipeline.config import build_config
    from tv3dg.pipeline.run import generate

    weights = Path(args.weights)
    flags = {"prompt": "a DSLR photo of a corgi", "image": str(IMAGE), "prior": {
        "model": str(weights / "stable-diffusion-v1-5"),
        "ip_adapter": str(weights / "IP-Adapter" / "models" / "ip-adapter_sd15.safetensors")}}
    preset_steps = build_config("sd15", flags, []).steps
    config = build_config("sd15", flags, [
        f"steps={args.generate_steps}", f"prior.device={args.device}", f"prior.dtype={args.dtype}", "init.kind=sphere",
        f"camera.resolution={args.resolution}", f"prior.resolution={args.resolution}", f"camera.views_per_step={args.views}",
        f"checkpoint_every={args.generate_steps}", "export.turntable_frames=8", *args.overrides])
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = generate(config, out, progress=False)
    total = time.perf_counter() - start
    loop = result.metrics["time_s"]
    per_step = loop / args.generate_steps
    return {"steps": args.generate_steps, "loop_seconds": loop, "seconds_per_step": per_step,
            "setup_and_export_seconds": total - loop, "preset_steps": preset_steps,
            "extrapolated_minutes": (total - loop + per_step * preset_steps) / 60, "peak_gib": peak_gib(args.device),
            "num_gaussians": result.metrics["num_gaussians"]}


STAGES: dict[str, Callable[[argparse.Namespace], dict]] = {
    "cuda_tests": cuda_tests, "rasterizers": rasterizers, "sd15_steps": sd15_steps, "shap_e": shap_e, "generate": generate_run,
}


def markdown(result: dict) -> str:
    """The results as one table, a row per measurement."""
    stages = result["stages"]
    rows = [("machine", result["machine"])]
    for name, stage in stages.items():
        if "error" in stage:
            rows.append((name, f"FAILED: {stage['error']}"))
            continue
        if name == "cuda_tests":
            rows.append(("CUDA tests", stage["summary"]))
        elif name == "rasterizers":
            what = f"{stage['gaussians']:,} Gaussians, {stage['resolution']} px x {stage['views']} views, forward + backward"
            for backend in ("torch", "gsplat"):
                if f"{backend}_seconds" in stage:
                    rows.append((f"{backend} rasterizer", f"{stage[f'{backend}_seconds']:.3f} s ({what})"))
            parity = stage.get("parity")
            rows.append(("gsplat vs torch", f"mean abs rgb {parity['mean_abs_rgb']:.1e}, alpha {parity['mean_abs_alpha']:.1e}"
                         if parity else stage["gsplat"]))
        elif name == "sd15_steps":
            for row in stage["losses"]:
                peak = f"{row['peak_cuda_gib']:.1f} GiB" if row["peak_cuda_gib"] else f"{row['peak_cpu_rss_gib']:.1f} GiB RSS"
                step = row["seconds_per_step"] if row["seconds_per_step"] is not None else row["loop_seconds"]
                rows.append((f"sd15 {row['loss']}", f"{step:.2f} s/step, peak {peak}, doctor's estimate {row['estimated_gib']:.1f} GiB"))
        elif name == "shap_e":
            rows.append(("Shap-E", f"{stage['sample_seconds']:.1f} s for {stage['steps']} steps + {stage['mesh_seconds']:.1f} s "
                         f"for the mesh on a {stage['grid']}^3 grid, peak "
                         f"{stage['peak_gib'] or 0:.1f} GiB ({sum(stage['parameters'].values()) / 1e6:.0f}M parameters)"))
        elif name == "generate":
            rows.append((f"generate {stage['steps']} steps", f"{stage['seconds_per_step']:.2f} s/step; "
                         f"{stage['preset_steps']} steps: about {stage['extrapolated_minutes']:.0f} min"))
    return "\n".join(["| what | result |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def main() -> None:
    parser = IntermixedParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--gaussians", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed rasterizer runs after one warm-up")
    parser.add_argument("--steps", type=int, default=6, help="sd15 steps per loss (the first is not timed)")
    parser.add_argument("--losses", nargs="+", choices=LOSS_NAMES, default=["vpcsm", "ism", "sds"])
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="default: float16 on cuda, float32 on cpu")
    parser.add_argument("--shap-e-steps", type=int, default=64)
    parser.add_argument("--shap-e-layers", type=int, default=24, help="prior transformer layers (24 as released)")
    parser.add_argument("--shap-e-grid", type=int, default=128, help="Shap-E's marching-cubes grid (128 as in diffusers)")
    parser.add_argument("--generate-steps", type=int, default=200)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="random-weight folders (built when missing)")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=list(STAGES))
    parser.add_argument("--json", type=Path, required=True, help="results; the markdown table goes beside it (.md)")
    add_overrides(parser, "export.mesh.resolution=32 (applied to the sd15_steps and generate runs)")
    args = parser.parse_args()
    args.dtype = args.dtype or ("float16" if args.device == "cuda" else "float32")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but no CUDA GPU is available; use --device cpu")
    result = {"command": " ".join(["python", "benchmarks/gpu.py", *sys.argv[1:]]), "machine": describe_machine(args.device),
              "torch": torch.__version__, "stages": {}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    if {"sd15_steps", "generate"} & set(args.stages):
        start = time.perf_counter()
        result["weights"] = {"parameters": ensure_weights(args.weights), "seconds": time.perf_counter() - start}
    for name in args.stages:
        start = time.perf_counter()
        try:
            stage = STAGES[name](args)
        except Exception as err:  # recorded in the results; the other stages still run
            stage = {"error": f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}",
                     "traceback": traceback.format_exc()}
        stage["stage_seconds"] = time.perf_counter() - start
        result["stages"][name] = stage
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{name}: {stage['stage_seconds']:.0f} s" + (f" FAILED {stage['error']}" if "error" in stage else ""), flush=True)
    table = markdown(result)
    args.json.with_suffix(".md").write_text(table + "\n")
    print(table)
    if any("error" in stage for stage in result["stages"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
