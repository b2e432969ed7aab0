"""`benchmarks/gpu.py --device cpu --resolution 64 --views 1`: every stage runs on a CPU (the CI smoke run).

The weights are the tiny random models in the random-SD-1.5 folder layout the benchmark reads, and
every size is cut to the least that still runs each code path, so the run takes about a minute;
on a GPU the same script runs at the preset's sizes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_models import make_tiny_ip_adapter, make_tiny_sd_folder

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def tiny_weights(root: Path) -> Path:
    """Tiny models where benchmarks/gpu.py looks for its random SD-1.5 + IP-Adapter folders."""
    model = make_tiny_sd_folder(root / "stable-diffusion-v1-5")
    adapter, _ = make_tiny_ip_adapter(model, root / "IP-Adapter" / "models")
    adapter.rename(adapter.with_name("ip-adapter_sd15.safetensors"))
    (root / "parameters.json").write_text(json.dumps({"parameters": {"unet": 0}, "report": ["tiny test models"]}))
    return root


def test_gpu_benchmark_smoke_run_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    command = [sys.executable, "benchmarks/gpu.py", "--device", "cpu", "--resolution", "64", "--views", "1",
               "--weights", str(tiny_weights(tmp_path / "weights")), "--json", str(out),
               "--gaussians", "2000", "--repeats", "1", "--steps", "2", "--losses", "sds",
               "--shap-e-layers", "1", "--shap-e-steps", "1", "--shap-e-grid", "16", "--generate-steps", "2",
               "sgc.sample_steps=1", "export.turntable_resolution=64", "export.views=2", "export.mesh.resolution=32",
               "export.mesh.texture_resolution=64", "export.mesh.bake_resolution=32"]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)  # about a minute alone on 2 cores; generous for a loaded CI machine
    assert done.returncode == 0, done.stdout[-3000:]
    result = json.loads(out.read_text())
    stages = result["stages"]
    assert list(stages) == ["cuda_tests", "rasterizers", "sd15_steps", "shap_e", "generate"]
    assert not [name for name, stage in stages.items() if "error" in stage]
    assert stages["cuda_tests"]["passed"] and "skipped" in stages["cuda_tests"]["summary"]  # no CUDA here
    assert stages["rasterizers"]["torch_seconds"] > 0 and "gsplat needs CUDA" in stages["rasterizers"]["gsplat"]
    (sds,) = stages["sd15_steps"]["losses"]
    assert sds["loss"] == "sds" and sds["seconds_per_step"] > 0 and sds["estimated_gib"] > 0
    assert stages["shap_e"]["mesh_vertices"] > 0 and stages["shap_e"]["parameters"]["prior"] > 0
    generate = stages["generate"]
    assert generate["preset_steps"] == 3000 and generate["extrapolated_minutes"] > generate["loop_seconds"] / 60
    table = out.with_suffix(".md").read_text()
    for row in ("| CUDA tests |", "| torch rasterizer |", "| sd15 sds |", "| Shap-E |", "| generate 2 steps |"):
        assert row in table
