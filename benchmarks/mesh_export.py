"""Mesh export before/after: size, triangle count, export time and how close the mesh looks to the Gaussians.

    make demo                                    # writes outputs/demo/asset.ply
    python benchmarks/mesh_export.py outputs/demo/asset.ply

Exports the asset four ways (the full marching-cubes mesh with vertex colours, which is what the
export wrote before decimation and texturing; decimated with vertex colours; decimated and
textured from the colour grid; the default, decimated and textured from projected renders),
scores each against the Gaussians from 8 views between the bake views (`tv3dg.eval.mesh_fidelity`:
PSNR and mean absolute error over the object mask, white background, 128 px), writes the numbers to
benchmarks/results/mesh_export.json and docs/mesh.png (Gaussians above, default textured mesh below).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from machine import command_line, describe_machine

from tv3dg.eval.mesh_fidelity import mesh_fidelity, render_trimesh
from tv3dg.export.mesh import MeshConfig, export_mesh, gaussian_grid, save_mesh
from tv3dg.gaussians.ply import load_ply
from tv3dg.render.cameras import orbit_cameras
from tv3dg.render.rasterizer import rasterize

DEFAULT = MeshConfig()
VARIANTS = {
    "marching cubes, vertex colours (before)": replace(DEFAULT, target_faces=0, texture=False),
    "decimated, vertex colours": replace(DEFAULT, texture=False),
    "decimated, texture from the colour grid": replace(DEFAULT, bake="grid"),
    "decimated, texture from projected renders (default)": DEFAULT,
}


def measure(asset: Path, out_json: Path, figure: Path) -> None:
    gaussians = load_ply(asset)
    cameras = orbit_cameras(20.0, torch.arange(8) * 45.0 + 22.5, 3.2, 40.0, 128)
    background = torch.ones(3)
    results = {}
    for name, config in VARIANTS.items():
        start = time.perf_counter()
        mesh = export_mesh(gaussian_grid(gaussians, config), config, gaussians)
        with tempfile.TemporaryDirectory() as tmp:
            files = save_mesh(mesh, Path(tmp) / "mesh.glb") + save_mesh(mesh, Path(tmp) / "mesh.obj")
            seconds = time.perf_counter() - start
            sizes = {path.name: path.stat().st_size for path in files}
        score = mesh_fidelity(mesh, gaussians, cameras, background)
        results[name] = {"vertices": len(mesh.vertices), "faces": len(mesh.faces), "export_seconds": round(seconds, 1),
                         "bytes": sizes, **{k: round(v, 4) for k, v in score.items()}}
        print(name, json.dumps(results[name]), flush=True)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"command": command_line(__file__), "machine": describe_machine() + " at the end", "asset": str(asset), "torch_threads": torch.get_num_threads(), "results": results}, indent=2) + "\n")
    views = cameras[torch.arange(0, 8, 2)]
    with torch.no_grad():
        splats = rasterize(gaussians, views, background).rgb
    meshes, _ = render_trimesh(mesh, views, background)
    rows = torch.cat([torch.cat(list(splats), dim=1), torch.cat(list(meshes), dim=1)], dim=0)
    figure.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rows.clamp(0, 1) * 255).round().byte().numpy()).save(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("asset", type=Path, nargs="?", default=Path("outputs/demo/asset.ply"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mesh_export.json"))
    parser.add_argument("--figure", type=Path, default=Path("docs/mesh.png"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    measure(args.asset, args.out, args.figure)


if __name__ == "__main__":
    main()
