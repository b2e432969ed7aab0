"""A short `tv3dg generate` on the bundled mini prior, through the command line, with the default preset."""

import json

from tv3dg.cli import main
from tv3dg.gaussians.ply import load_ply


def test_short_generation_on_the_bundled_prior(tmp_path):
    out = tmp_path / "cube"
    code = main(["generate", "--prompt", "a red striped cube", "--out", str(out), "--quiet",
                 "steps=20", "sgc.start_step=10", "sgc.sample_steps=10", "visual_prompt.sample_steps=10",
                 "export.turntable_frames=8", "export.turntable_resolution=64", "export.mesh.resolution=48"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 20 and metrics["visual_prompt"] == "func_switch"
    attributes = metrics["attributes"]
    assert attributes["views"] == 8
    assert attributes["prompt_target"] == {"shape": "cube", "colour": "red", "pattern": "striped"}
    assert set(attributes["prompt"]) == {"shape", "colour", "pattern", "all"}
    assert load_ply(out / "asset.ply").num_points == metrics["num_gaussians"]
    for name in ("mesh.glb", "mesh.obj", "mesh.mtl", "mesh.png", "turntable.mp4", "views.png", "visual_prompt.png", "config.yaml"):
        assert (out / name).stat().st_size > 0, name
