"""A short `tv3dg generate` on the bundled mini prior, through the command line, with the default preset."""

import json

from tv3dg.cli import main
from tv3dg.gaussians.ply import load_ply


def test_short_generation_on_the_bundled_prior(tmp_path):
    out = tmp_path / "cube"
    code = main(["generate", "--prompt", "a red striped cube", "--out", str(out), "--quiet",
                 "steps=20", "sgc.start_step=10", "sgc.sample_steps=10", "visual_prompt.sample_steps=10",
                 "export.turntable_frames=8", "export.turntable_resolution=64", "export.mesh.resolution=48",
                 "export.mesh.target_faces=4000"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 20 and metrics["visual_prompt"] == "func_switch"
    assert metrics["dropped_words"] == [] and metrics["prompt_read_as"] == "a red striped cube"
    attributes = metrics["attributes"]
    assert attributes["views"] == 8
    target = {"shape": "cube", "colour": "red", "pattern": "striped"}
    assert attributes["prompt_target"] == target
    assert attributes["visual_prompt_target"] == target  # the Func Switch sample shows what the prompt says
    predicted = attributes["predicted"]
    for name, wanted in target.items():  # each rate is the share of the 8 views read as the prompt says
        assert attributes["prompt"][name] == sum(p == wanted for p in predicted[name]) / 8
    all_right = sum(all(predicted[k][v] == target[k] for k in target) for v in range(8)) / 8
    assert attributes["prompt"]["all"] == all_right
    assert attributes["prompt"]["colour"] >= 0.75  # 20 steps from the red shape-prior start keep it red
    # densification starts at step 100: the 4096 initial points are all still there
    assert metrics["densify"] == {"cloned": 0, "split": 0, "pruned": 0, "opacity_resets": 0}
    assert load_ply(out / "asset.ply").num_points == metrics["num_gaussians"] == 4096
    # the world's own measures: fronts seen from behind among the 8 views, and colour against the true cube
    janus = metrics["janus"]
    assert janus["back_views"] == 3 and janus["janus_rate"] == janus["fronts_from_behind"] / 3
    assert metrics["colour"]["colour_error"] < 0.25  # red from the shape-prior start; red to its nearest colour is 0.4
    for name in ("mesh.glb", "mesh.obj", "mesh.mtl", "mesh.png", "turntable.mp4", "views.png", "visual_prompt.png", "config.yaml"):
        assert (out / name).stat().st_size > 0, name
