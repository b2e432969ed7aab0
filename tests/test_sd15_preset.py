"""The `sd15` preset file as shipped, on tiny random SD-1.5-architecture weights and a tiny Shap-E.

Changed from the file: only what a CPU forces (float32 on the CPU, 32 px into the prior, for the renders and
export, a 64 px texture, 12 loop steps instead of 3000) and the weights' folders. `shortened` scales every step count of the
preset to the 12 steps, so the run passes through the preset's phases in its order: Shap-E init, 4 views
per step with view-dependent prompts, the t_max annealing, densification with an opacity reset, SGC from
its start step. The test asserts what each phase did; the loop's steps run without `Generation.run`'s
checkpoints and export (tested elsewhere), which on ~80k densified Gaussians would cost minutes here.
"""

from __future__ import annotations

import math

import pytest
import torch
from tiny_models import make_tiny_world
from tiny_shap_e import make_tiny_shap_e

from tv3dg.config import schedule_value
from tv3dg.gaussians.sh import sh_dc_to_rgb
from tv3dg.init import initializers
from tv3dg.pipeline import run as run_module
from tv3dg.pipeline.config import GenerateConfig, build_config, shortened
from tv3dg.priors.diffusers_prior import DiffusersPrior
from tv3dg.priors.prompts import view_prompt
from tv3dg.render.cameras import view_direction

pytestmark = pytest.mark.slow
STEPS = 12
PROMPT = "a DSLR photo of a corgi"
CPU = [  # what a CPU forces: dtype, resolution (renders, prior input, export); the loop steps come from `shortened`
    "prior.device=cpu", "prior.dtype=float32", "prior.resolution=32", "camera.resolution=32",
    "export.turntable_resolution=32", "export.mesh.resolution=32", "export.mesh.texture_resolution=64",
    "export.mesh.bake_resolution=32",
]


def test_shortened_scales_every_loop_step_count_and_nothing_else():
    preset = build_config("sd15", {"prompt": PROMPT}, [])
    short = shortened(preset, STEPS)  # 3000 -> 12: a ratio of 1/250
    densify = short.gaussians.densify
    assert short.steps == STEPS and short.checkpoint_every == 1  # 250 / 250
    assert (densify.start_step, densify.stop_step, densify.interval) == (1, 10, 1)  # 300, 2400, 100 (kept >= 1)
    assert (densify.opacity_reset_interval, densify.size_prune_start_step) == (5, 5)  # 1200 / 250 = 4.8
    assert short.sgc.start_step == 2  # 500 / 250
    assert short.distill.t_max == [0, 0.98, 0.5, 6]  # annealed over the first half, as over 1500 of 3000
    assert short.gaussians.optim.means == [0, 0.0016, 0.000016, 12]
    # everything else is the preset's own, sampler step counts (*_steps) included
    assert short.sgc.sample_steps == preset.sgc.sample_steps == 30
    assert short.init == preset.init and short.camera == preset.camera and short.prior == preset.prior
    back = shortened(short, 3000)
    assert (back.sgc.start_step, back.gaussians.densify.stop_step) == (500, 2500)  # rounding to whole steps at 12


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd15_preset")
    return make_tiny_world(root / "world"), make_tiny_shap_e(root / "shap_e")


def _preset_config(weights) -> GenerateConfig:
    world, shap_e = weights
    flags = {"prompt": PROMPT, "prior": {"model": str(world.model_dir), "ip_adapter": str(world.ip_adapter)}}
    return shortened(build_config("sd15", flags, [*CPU, f"init.shap_e_model={shap_e}"]), STEPS)


def test_the_sd15_preset_runs_every_phase_on_a_cpu(weights, tmp_path, monkeypatch):
    config = _preset_config(weights)
    assert config.init.kind == "shap_e" and config.camera.views_per_step == 4 and config.sgc.enabled
    meshes, conditioned = [], []

    shap_e_mesh = initializers.shap_e_mesh

    def decode(*args, **kwargs):
        meshes.append((args, shap_e_mesh(*args, **kwargs)))
        return meshes[-1][1]

    monkeypatch.setattr(initializers, "shap_e_mesh", decode)
    generation = run_module.Generation(config, tmp_path / "run", resume=False, progress=False)

    # Shap-E init: one decode of the prompt, the preset's 20000 points at its radius, coloured from the mesh.
    assert len(meshes) == 1 and meshes[0][0][1] == PROMPT
    start = generation.gaussians
    assert start.num_points == config.init.num_points == 20000
    assert float(start.means.detach().norm(dim=1).max()) == pytest.approx(config.init.radius, abs=1e-5)
    mesh_colours = torch.from_numpy(meshes[0][1].visual.vertex_colors[:, :3] / 255.0).float()
    colours = sh_dc_to_rgb(start.sh_dc.detach()[:, 0])
    assert (colours >= mesh_colours.min(0).values - 1e-5).all() and (colours <= mesh_colours.max(0).values + 1e-5).all()

    original = DiffusersPrior.prepare_conditions

    def record(prior, prompt, visual_prompt=None, cameras=None):
        conditions = original(prior, prompt, visual_prompt, cameras)
        conditioned.append((cameras, conditions.prompts))
        return conditions

    monkeypatch.setattr(DiffusersPrior, "prepare_conditions", record)
    # The loop's steps themselves (`Generation.run` adds checkpoints and the export, tested elsewhere).
    logs, points = [], []
    for step in range(STEPS):
        logs.append(generation.train_step(step))
        points.append(generation.gaussians.num_points)
    assert generation.state.nonfinite_steps == 0 and all(math.isfinite(step_logs["loss"]) for step_logs in logs)

    # 4 views per step, each with its own view-dependent prompt.
    assert len(conditioned) == STEPS
    seen = set()
    for cameras, prompts in conditioned:
        directions = view_direction(cameras.elevation_deg.cpu(), cameras.azimuth_deg.cpu())
        assert len(prompts) == len(cameras) == 4
        assert prompts == [view_prompt(PROMPT, d) for d in directions]
        seen.update(directions)
    assert len(seen) >= 2  # 48 cameras over the whole orbit name more than one side

    # t_max annealed on the shortened schedule: from step 6 on, t stays under 0.5 of the 1000 timesteps.
    for step, step_logs in enumerate(logs):
        assert step_logs["t"] <= schedule_value(config.distill.t_max, step) * 1000 + 1, step
    assert max(step_logs["t"] for step_logs in logs[6:]) <= 501

    # SGC from its (scaled) start step on, every term logged and finite.
    sgc_steps = [step for step, step_logs in enumerate(logs) if "sgc_semantic" in step_logs]
    assert sgc_steps == list(range(config.sgc.start_step, STEPS))
    for step in sgc_steps:
        assert all(math.isfinite(logs[step][k]) for k in ("sgc_semantic", "sgc_patch", "sgc_mask"))

    # Densification on its scaled schedule: the count changes only at densify steps, the totals add up.
    densify = config.gaussians.densify
    densify_steps = {s for s in range(STEPS) if densify.start_step < s < densify.stop_step and s % densify.interval == 0}
    before = [20000] + points[:-1]
    changed = {s for s in range(STEPS) if points[s] != before[s]}
    assert changed <= densify_steps
    totals = generation.state.densify  # what metrics.json reports as "densify"
    assert totals["cloned"] + totals["split"] + totals["pruned"] > 0
    grown = totals["cloned"] + totals["split"] * (densify.split_count - 1) - totals["pruned"]
    assert generation.gaussians.num_points == points[-1] == 20000 + grown
    assert logs[-1]["num_gaussians"] == points[-1]
    resets = [s for s in range(1, STEPS) if s % densify.opacity_reset_interval == 0 and s < densify.stop_step]
    assert totals["opacity_resets"] == len(resets) == 1  # at step 5

