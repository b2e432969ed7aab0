"""`tv3dg generate` end to end on tiny random models: outputs, resume, Ctrl-C, NaN guard, bad input."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tiny_models import TinyWorld, make_tiny_world
from tv3dg.cli import main
from tv3dg.errors import UserError
from tv3dg.gaussians.formats import FORMAT_NAMES, load
from tv3dg.gaussians.ply import load_ply
from tv3dg.pipeline import outputs as outputs_module
from tv3dg.pipeline import run as run_module
from tv3dg.pipeline.config import AssetFormat, build_config
from tv3dg.pipeline.interrupt import StopRequest
from tv3dg.pipeline.run import generate

FAST = [
    "steps=6", "init.kind=sphere", "init.num_points=300", "checkpoint_every=3",
    "sgc.start_step=2", "sgc.sample_steps=3", "visual_prompt.sample_steps=3",
    "export.turntable_frames=4", "export.turntable_resolution=32", "export.views=4", "export.mesh.resolution=32",
    "export.mesh.texture_resolution=64", "export.mesh.bake_resolution=32",
    "camera.views_per_step=2", "gaussians.densify.start_step=2", "gaussians.densify.interval=2",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> TinyWorld:
    return make_tiny_world(tmp_path_factory.mktemp("tiny"), camera_conditioned=True)


def config_for(world: TinyWorld, *overrides: str, **updates):
    flags = {"prompt": "a red striped cube", "prior": {"model": str(world.model_dir), "ip_adapter": str(world.ip_adapter)}}
    flags.update(updates)
    return build_config("mini", flags, FAST + list(overrides))


@pytest.mark.parametrize("target_space", ["image", "latent"])
def test_generation_writes_every_output(world, tmp_path, target_space):
    result = generate(config_for(world, f"distill.target_space={target_space}"), tmp_path / "run", progress=False)
    out = tmp_path / "run"
    for name in ("asset.ply", "asset.spz", "mesh.glb", "mesh.obj", "mesh.mtl", "mesh.png", "turntable.mp4", "views.png", "visual_prompt.png",
                 "config.yaml", "metrics.json", "checkpoints/last.safetensors"):
        assert (out / name).is_file(), name
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"
    gaussians = load_ply(out / "asset.ply")
    assert gaussians.num_points == result.metrics["num_gaussians"] == load(out / "asset.spz").num_points
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["visual_prompt"] == "func_switch"
    # VPCSM with the mini preset's 1 inversion step: 1 inversion call + 1 batched teacher call per
    # step, plus the Func Switch sample and 4 SGC reference samples, one batched call per DDIM step.
    sampling_calls = 3 * (1 + 4)
    assert metrics["unet"]["calls"] == 6 * 2 + sampling_calls
    assert metrics["unet"]["setup_calls"] == sampling_calls and metrics["unet"]["calls_per_step"] == 2
    assert metrics["unet"]["rows_per_step"] == 1 * 2 + 3 * 2  # 2 views: 1 inversion call + [c-, c+, c+ perturbed]
    assert metrics["mesh"] == "ok" and np.isfinite(metrics["losses"]["loss"])
    densify = metrics["densify"]  # every change to the point count is accounted for (splits replace 1 by 2)
    assert set(densify) == {"cloned", "split", "pruned", "opacity_resets"}
    assert 300 + densify["cloned"] + densify["split"] - densify["pruned"] == metrics["num_gaussians"]
    assert 0 < metrics["mesh_export"]["faces"] <= 20000 and metrics["mesh_export"]["bytes"]["mesh.png"] > 0
    assert metrics["asset_bytes"] == {name: (out / name).stat().st_size for name in ("asset.ply", "asset.spz")}


def test_export_formats_choose_the_asset_files(world, tmp_path):
    formats = "export.formats=[ply, compressed.ply, splat, glb]"
    generate(config_for(world, formats, "steps=2", "sgc.enabled=false"), tmp_path / "run", progress=False)
    written = sorted(p.name for p in (tmp_path / "run").glob("asset.*"))
    assert written == ["asset.compressed.ply", "asset.glb", "asset.ply", "asset.splat"]
    reference = load_ply(tmp_path / "run" / "asset.ply")
    for name in written:
        back = load(tmp_path / "run" / name)
        assert back.num_points == reference.num_points
        torch.testing.assert_close(back.means, reference.means, rtol=0, atol=0.01)  # within every format's steps


@pytest.mark.parametrize("value, message", [
    ("[spz]", "export.formats must include 'ply'"),
    ("[ply, ply]", "lists a format twice"),
    ("[ply, ksplat]", r"export.formats\[1\]' must be one of"),
])
def test_export_formats_are_checked(world, value, message):
    with pytest.raises(UserError, match=message):
        config_for(world, f"export.formats={value}")


def test_the_format_names_are_the_ones_the_files_module_knows():
    assert typing.get_args(AssetFormat) == FORMAT_NAMES


def test_a_folder_with_a_run_is_not_overwritten_by_accident(world, tmp_path, capsys):
    out = tmp_path / "run"
    assert _cli(world, out) == 0
    assert _cli(world, out) == 2
    assert "--resume" in capsys.readouterr().err
    assert _cli(world, out, "--overwrite") == 0


def test_scales_stay_within_the_configured_bounds(world, tmp_path):
    generate(config_for(world, "gaussians.min_scale=0.05", "gaussians.max_scale=0.08"), tmp_path / "run", progress=False)
    scales = load_ply(tmp_path / "run" / "asset.ply").scales
    assert scales.min() >= 0.05 * (1 - 1e-5) and scales.max() <= 0.08 * (1 + 1e-5)


def test_a_run_without_scale_bounds_finishes(world, tmp_path):
    """The sd15 preset sets neither bound; the loop must not ask torch.clamp for two None bounds."""
    result = generate(config_for(world, "gaussians.min_scale=0", "gaussians.max_scale=0", "sgc.enabled=false"),
                      tmp_path / "run", progress=False)
    assert result.metrics["steps"] == 6


def test_bfloat16_and_the_memory_options_run_on_the_cpu(world, tmp_path):
    options = ["prior.dtype=bfloat16", "prior.vae_slicing=true", "prior.vae_tiling=true", "prior.channels_last=true",
               "prior.text_encoder_on_cpu=true", "distill.target_space=latent"]
    result = generate(config_for(world, *options), tmp_path / "run", progress=False)
    assert result.metrics["steps"] == 6 and np.isfinite(result.metrics["losses"]["loss"])
    assert result.metrics["nonfinite_steps"] == 0


def test_outputs_are_written_from_a_copy_of_the_live_gaussians(world, tmp_path, monkeypatch):
    """Exports must not move the optimised parameters (Module.cpu() is in place: on CUDA it would
    leave the optimiser's moments on the GPU and the parameters on the CPU)."""
    saved = []
    real = outputs_module.save
    monkeypatch.setattr(outputs_module, "save", lambda path, gaussians: (saved.append(gaussians), real(path, gaussians)))
    generation = run_module.Generation(config_for(world, "sgc.enabled=false"), tmp_path / "run", resume=False, progress=False)
    generation.run()
    assert saved and saved[-1] is not generation.gaussians
    torch.testing.assert_close(saved[-1].means, generation.gaussians.means.detach(), rtol=0, atol=0)


def test_sgc_switched_off_costs_no_reference_samples(world, tmp_path):
    result = generate(config_for(world, "sgc.enabled=false"), tmp_path / "run", progress=False)
    assert not any(key.startswith("sgc_") for key in result.metrics["losses"])
    assert result.metrics["unet"]["calls"] == 6 * 2 + 3  # 2 calls per step (preset: 1 inversion move) + the Func Switch sample


def _interrupt_at(step_to_stop: int):
    def on_step(step: int, logs: dict, gaussians) -> None:
        if step == step_to_stop:
            os.kill(os.getpid(), signal.SIGINT)

    return on_step


def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(world, tmp_path):
    straight = generate(config_for(world), tmp_path / "straight", progress=False)
    assert not straight.interrupted
    stopped = generate(config_for(world), tmp_path / "resumed", progress=False, on_step=_interrupt_at(4))
    assert stopped.interrupted and stopped.metrics["steps"] == 4
    assert load_ply(tmp_path / "resumed" / "asset.ply").num_points > 0  # Ctrl-C leaves a usable asset
    resumed = generate(config_for(world), tmp_path / "resumed", resume=True, progress=False)
    assert resumed.metrics["steps"] == 6
    a = load_file(str(tmp_path / "straight" / "checkpoints" / "last.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoints" / "last.safetensors"))
    for key in (k for k in a if k.startswith("gaussians.")):
        # one machine, one thread count, the same batches in the same order: the runs agree bit for bit;
        # 1e-6 only absorbs a last-bit difference, a resume bug moves parameters by far more
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    assert resumed.metrics["unet"]["calls"] == straight.metrics["unet"]["calls"]


def test_a_stop_request_from_another_thread_ends_at_a_step_boundary(world, tmp_path):
    stop = StopRequest()

    def on_step(step: int, logs: dict, gaussians) -> None:
        if step == 3:
            threading.Thread(target=stop.request).start()  # as the app's Stop button does
            time.sleep(0.2)

    result = generate(config_for(world), tmp_path / "run", progress=False, on_step=on_step, stop=stop)
    assert result.interrupted and result.metrics["steps"] == 3
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["interrupted"]
    assert load_ply(tmp_path / "run" / "asset.ply").num_points == result.metrics["num_gaussians"]


def test_nonfinite_gradients_are_skipped_without_corrupting_the_asset(world, tmp_path, monkeypatch):
    real = run_module.compute_distillation
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        grad, logs = real(*args, **kwargs)
        calls["n"] += 1
        return (grad * float("nan"), logs) if calls["n"] == 2 else (grad, logs)

    monkeypatch.setattr(run_module, "compute_distillation", poisoned)
    result = generate(config_for(world, "sgc.enabled=false"), tmp_path / "run", progress=False)
    assert result.metrics["nonfinite_steps"] == 1
    gaussians = load_ply(tmp_path / "run" / "asset.ply")
    assert all(torch.isfinite(p).all() for p in gaussians.parameters())


def _cli(world: TinyWorld, out: Path, *extra: str) -> int:
    return main(["generate", "--prompt", "a red cube", "--model", str(world.model_dir), "--ip-adapter",
                 str(world.ip_adapter), "--out", str(out), "--quiet", *extra, *FAST])


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda d: ["--prompt", "  "], "prompt is empty"),
        (lambda d: ["--image", str(d / "missing.png")], "does not exist"),
        (lambda d: ["--image", _save(d / "wide.png", Image.new("RGB", (5000, 16)))], "at most 4096"),
        (lambda d: ["--image", _write(d / "corrupt.png", b"\x89PNG\r\n\x1a\n garbage")], "could not be read"),
        (lambda d: ["--image", _save(d / "deep.png", Image.fromarray(np.zeros((32, 32), np.uint16)))], "8 bits"),
        (lambda d: ["camera.resolutoin=32"], "unknown config key 'camera.resolutoin'"),
        (lambda d: ["--image", _save(d / "red.png", Image.new("RGB", (32, 32), (200, 0, 0))), "prior.ip_adapter=null"],
         "needs an IP-Adapter"),
        (lambda d: ["--model", str(d / "no-such-model")], "is neither a folder"),
    ],
)
def test_bad_input_fails_with_one_line_and_writes_nothing(world, tmp_path, capsys, make_input, message):
    out = tmp_path / "out"
    code = _cli(world, out, *make_input(tmp_path))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["init.kind=prior"], "init.kind=mini_shape_prior"),
        (["init.kind=mini_shape_prior"], "only knows the mini world"),
        (["init.kind=shap_e", "init.shap_e_model=/no/such/shap-e"], "or use init.kind=sphere"),
        (["sgc.depth_estimator=/no/such/depth-model"], "sgc.depth_estimator=FOLDER"),
    ],
)
def test_initialisers_and_depth_models_are_checked_before_any_model_loads(world, tmp_path, monkeypatch, overrides, message):
    monkeypatch.setattr(run_module, "DiffusersPrior", lambda *a, **k: pytest.fail("the prior was loaded"))
    with pytest.raises(UserError) as err:
        generate(config_for(world, *overrides), tmp_path / "run", progress=False)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def _save(path: Path, image: Image.Image) -> str:
    image.save(path)
    return str(path)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)
