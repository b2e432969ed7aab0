"""Everything a finished (or interrupted) run leaves in its output folder, each file written atomically.

asset.ply (Inria 3DGS layout) and asset.<suffix> in the other formats of `export.formats`
(by default asset.spz), mesh.glb + mesh.obj/.mtl/.png (textured), turntable.mp4/.gif,
views.png, visual_prompt.png, config.yaml, metrics.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tv3dg.atomic import write_text_atomic
from tv3dg.config import dump_yaml
from tv3dg.errors import UserError
from tv3dg.export.mesh import export_mesh, gaussian_grid, save_mesh
from tv3dg.export.video import render_turntable, save_contact_sheet, save_image, to_uint8, write_turntable
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.formats import FORMATS, save
from tv3dg.pipeline.config import ExportConfig, GenerateConfig
from tv3dg.render.cameras import Cameras, turntable_cameras
from tv3dg.render.rasterizer import rasterize


def view_cameras(config: ExportConfig, resolution: int, device: torch.device | str = "cpu") -> Cameras:
    """The `config.views` cameras at evenly spaced azimuths of views.png, the metrics and the app's preview."""
    return turntable_cameras(config.views, config.turntable_elevation_deg, config.radius, config.fov_deg, resolution,
                             device=device)


def render_view_output(gaussians: Gaussians, config: ExportConfig, resolution: int, background: Tensor) -> tuple[Tensor, Tensor]:
    """(rgb [V,3,R,R], alpha [V,1,R,R]) from `view_cameras`, on the Gaussians' own device."""
    device = gaussians.means.device
    with torch.no_grad():
        out = rasterize(gaussians, view_cameras(config, resolution, device), background.to(device))
    return out.rgb.permute(0, 3, 1, 2), out.alpha.permute(0, 3, 1, 2)


def render_views(gaussians: Gaussians, config: ExportConfig, resolution: int, background: Tensor) -> Tensor:
    """Renders [V,3,R,R] from `view_cameras` (views.png, the metrics, the app's preview)."""
    return render_view_output(gaussians, config, resolution, background)[0]


def write_mesh(out_dir: Path, gaussians: Gaussians, config: ExportConfig, metrics: dict) -> None:
    """mesh.glb and mesh.obj (+ .mtl and .png when textured); sets metrics["mesh"] to "ok" or why no
    mesh was written (e.g. nothing opaque yet), and metrics["mesh_export"] to its size and time."""
    start = time.perf_counter()
    try:
        mesh = export_mesh(gaussian_grid(gaussians, config.mesh), config.mesh, gaussians)
    except UserError as err:
        metrics["mesh"] = f"skipped: {err}"
        return
    files = save_mesh(mesh, out_dir / "mesh.glb") + save_mesh(mesh, out_dir / "mesh.obj")
    metrics["mesh"] = "ok"
    metrics["mesh_export"] = {
        "vertices": len(mesh.vertices), "faces": len(mesh.faces), "seconds": round(time.perf_counter() - start, 2),
        "bytes": {path.name: path.stat().st_size for path in files},
    }


def asset_files(formats: list[str]) -> list[str]:
    """The file names `write_assets` gives the formats: asset.ply, asset.spz, ..."""
    return [f"asset{FORMATS[name].suffix}" for name in formats]


def write_assets(out_dir: Path, gaussians: Gaussians, formats: list[str], metrics: dict) -> None:
    """asset.<suffix> in each of `formats`; metrics["asset_bytes"] gets each file's size."""
    metrics["asset_bytes"] = {}
    for name in asset_files(formats):
        save(out_dir / name, gaussians)
        metrics["asset_bytes"][name] = (out_dir / name).stat().st_size


def write_outputs(
    out_dir: Path,
    gaussians: Gaussians,
    config: GenerateConfig,
    visual_prompt: Tensor | None,
    metrics: dict,
    background: Tensor,
    progress: bool = True,
) -> dict:
    """Write every output file; returns `metrics` completed with what the export itself found."""
    gaussians = gaussians.detached_copy("cpu")
    write_assets(out_dir, gaussians, config.export.formats, metrics)
    write_mesh(out_dir, gaussians, config.export, metrics)
    export = config.export
    frames = render_turntable(
        gaussians, export.turntable_frames, export.turntable_resolution, export.turntable_elevation_deg,
        export.radius, export.fov_deg, background.cpu(), progress=progress, description="turntable",
    )
    write_turntable(out_dir / f"turntable.{export.turntable_format}", frames)
    views = render_views(gaussians, export, export.turntable_resolution, background.cpu())
    save_contact_sheet(out_dir / "views.png", list(to_uint8(views.permute(0, 2, 3, 1))), columns=4)
    if visual_prompt is not None:
        save_image(out_dir / "visual_prompt.png", to_uint8(visual_prompt[0].permute(1, 2, 0).cpu()))
    write_text_atomic(out_dir / "config.yaml", dump_yaml(config))
    write_text_atomic(out_dir / "metrics.json", json.dumps(_plain(metrics), indent=2) + "\n")
    return metrics


def _plain(value: object) -> object:
    """JSON-ready copy: tensors and numpy scalars become numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (torch.Tensor, np.generic)):
        return value.item() if value.ndim == 0 else value.tolist()
    return value
