"""`tv3dg doctor`: a good set-up passes; each broken one gets its own fail line naming the problem;
and `generate` refuses a wrong adapter before it loads any model.

Two kinds of weights: the tiny random models (cheap to copy and break) and SD-1.5 + IP-Adapter
SD-1.5 at their real widths (tests/conftest.py), against which adapters and encoders of other
widths are checked.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from tiny_models import make_tiny_world
from tv3dg.cli import main
from tv3dg.pipeline import run as run_module
from tv3dg.pipeline.config import build_config
from tv3dg.pipeline.memory import estimate_memory, shapes_from_folders
from tv3dg.priors.random_weights import ip_adapter_shapes, write_clip_preprocessor
from tv3dg.priors.weight_checks import meta_unet, read_safetensors_header

CPU = ["prior.device=cpu", "prior.dtype=float32", "init.kind=sphere"]


def doctor(capsys, *args: str) -> tuple[int, dict[str, dict]]:
    """Run `tv3dg doctor --json ...`; returns the exit status and the checks by name."""
    try:
        status = main(["doctor", "--json", *args])
    except SystemExit as exit_:
        status = exit_.code
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] == (status == 0)
    return status, {check["name"]: check for check in report["checks"]}


def failures(checks: dict[str, dict]) -> dict[str, str]:
    return {name: check["message"] for name, check in checks.items() if check["status"] == "fail"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tiny_copy(tiny, tmp_path):
    """A copy of the tiny model folder that a test may break."""
    return shutil.copytree(tiny.model_dir, tmp_path / "model")


def tiny_args(model_dir, world) -> list[str]:
    return ["--config", "sd15", "--model", str(model_dir), "--ip-adapter", str(world.ip_adapter), *CPU]


# ----- good set-ups --------------------------------------------------------------------------
def test_bundled_mini_preset_passes(capsys):
    status, checks = doctor(capsys)
    assert status == 0 and not failures(checks)
    assert {"python", "torch", "diffusers", "transformers", "device", "dtype", "gsplat", "model", "ip-adapter",
            "image encoder", "memory"} <= set(checks)
    assert checks["memory"]["status"] == "ok"


def test_tiny_models_pass_with_plain_text_output(tiny, capsys):
    status = main(["doctor", *tiny_args(tiny.model_dir, tiny)])
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out[-1].startswith("ready: ") and "0 failed" in out[-1]
    lines = {line.split()[1]: line.split()[0] for line in out[:-1]}
    assert lines["model"] == "ok" and lines["ip-adapter"] == "ok" and lines["memory"] == "ok"
    assert lines["architecture"] == "warning"  # the tiny UNet is not laid out like SD-1.5


@pytest.mark.slow
def test_full_width_sd15_passes_without_architecture_warning(reduced_sd15, capsys):
    status, checks = doctor(capsys, "--config", "sd15", "--model", str(reduced_sd15.model_dir),
                            "--ip-adapter", str(reduced_sd15.ip_adapter), *CPU)
    assert status == 0 and not failures(checks)
    assert "architecture" not in checks  # every width and block type is SD-1.5's
    assert "1024-d image embeddings" in checks["ip-adapter"]["message"]


# ----- broken set-ups: one fail line each ---------------------------------------------------
def test_missing_model_folder(tiny, tmp_path, capsys):
    status, checks = doctor(capsys, *tiny_args(tmp_path / "nowhere", tiny))
    assert status == 1
    assert list(failures(checks)) == ["model"]
    assert "neither a folder nor a model in the local Hugging Face cache" in checks["model"]["message"]
    assert checks["memory"]["status"] == "warning"  # not estimated without the model


def test_missing_subfolder(tiny, tiny_copy, capsys):
    shutil.rmtree(tiny_copy / "vae")
    status, checks = doctor(capsys, *tiny_args(tiny_copy, tiny))
    assert status == 1 and list(failures(checks)) == ["model"]
    assert "missing vae/" in checks["model"]["message"]


def test_truncated_safetensors(tiny, tiny_copy, capsys):
    weights = tiny_copy / "unet" / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    status, checks = doctor(capsys, *tiny_args(tiny_copy, tiny))
    assert status == 1 and list(failures(checks)) == ["model"]
    message = checks["model"]["message"]
    assert "diffusion_pytorch_model.safetensors' is truncated" in message and "download it again" in message


def test_pickle_only_weights_are_named(tiny, tiny_copy, capsys):
    (tiny_copy / "text_encoder" / "model.safetensors").rename(tiny_copy / "text_encoder" / "pytorch_model.bin")
    status, checks = doctor(capsys, *tiny_args(tiny_copy, tiny))
    assert status == 1 and "only pytorch_model.bin (pickled, not read)" in checks["model"]["message"]


def sdxl_width_adapter(model_dir, path):
    """An adapter of SDXL's widths (2048-d cross-attention, 1280-d image embeddings) on this UNet's layer layout."""
    config = dict(UNet2DConditionModel.load_config(model_dir / "unet"), cross_attention_dim=2048)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in ip_adapter_shapes(unet, 1280).items()}, str(path))
    return path


@pytest.mark.slow
def test_sdxl_width_adapter(reduced_sd15, tmp_path, capsys):
    adapter = sdxl_width_adapter(reduced_sd15.model_dir, tmp_path / "ip-adapter_sdxl.safetensors")
    status, checks = doctor(capsys, "--config", "sd15", "--model", str(reduced_sd15.model_dir), "--ip-adapter", str(adapter),
                            "--image-encoder", str(reduced_sd15.image_encoder), *CPU)
    assert status == 1 and list(failures(checks)) == ["ip-adapter"]
    assert "image tokens have width 2048, the UNet's cross-attention has 768" in checks["ip-adapter"]["message"]


@pytest.mark.slow
def test_plus_adapter(reduced_sd15, tmp_path, capsys):
    """A "plus" adapter: a resampler over the encoder's patch tokens instead of one projection."""
    shapes = ip_adapter_shapes(meta_unet(reduced_sd15.model_dir), 1024)
    tensors = {k: torch.zeros(s, dtype=torch.float16) for k, s in shapes.items() if k.startswith("ip_adapter.")}
    tensors |= {"image_proj.latents": torch.zeros(1, 16, 768), "image_proj.proj_in.weight": torch.zeros(768, 1280),
                "image_proj.proj_out.weight": torch.zeros(768, 768), "image_proj.norm_out.weight": torch.zeros(768)}
    adapter = tmp_path / "ip-adapter-plus_sd15.safetensors"
    save_file(tensors, str(adapter))
    status, checks = doctor(capsys, "--config", "sd15", "--model", str(reduced_sd15.model_dir), "--ip-adapter", str(adapter),
                            "--image-encoder", str(reduced_sd15.image_encoder), *CPU)
    assert status == 1 and list(failures(checks)) == ["ip-adapter"]
    assert "is a 'plus' adapter" in checks["ip-adapter"]["message"]


@pytest.mark.slow
def test_mismatched_image_encoder(reduced_sd15, tmp_path, capsys):
    """A ViT-L-style encoder (768-d projection) beside an adapter that expects ViT-H's 1024."""
    encoder = tmp_path / "vit_l_encoder"
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                   num_attention_heads=4, image_size=32, patch_size=8,
                                                   projection_dim=768)).save_pretrained(encoder)
    write_clip_preprocessor(encoder, 32)
    status, checks = doctor(capsys, "--config", "sd15", "--model", str(reduced_sd15.model_dir),
                            "--ip-adapter", str(reduced_sd15.ip_adapter), "--image-encoder", str(encoder), *CPU)
    assert status == 1 and list(failures(checks)) == ["image encoder"]
    assert "gives 768-d embeddings, the IP-Adapter expects 1024" in checks["image encoder"]["message"]


@pytest.mark.slow
def test_memory_over_a_given_limit_names_settings_that_fit(reduced_sd15, capsys):
    model = ["--config", "sd15", "--model", str(reduced_sd15.model_dir), "--ip-adapter", str(reduced_sd15.ip_adapter)]
    config = build_config("sd15", {"prompt": "x", "prior": {"model": str(reduced_sd15.model_dir),
                                                             "ip_adapter": str(reduced_sd15.ip_adapter)}}, CPU)
    adapter_parameters = read_safetensors_header(reduced_sd15.ip_adapter).parameters
    shapes = shapes_from_folders(reduced_sd15.model_dir, adapter_parameters, reduced_sd15.image_encoder)
    needed = estimate_memory(config, shapes, cuda=False).total / 2**30
    status, checks = doctor(capsys, *model, "--memory-limit", f"{needed - 0.05:.3f}", *CPU)
    assert status == 1 and list(failures(checks)) == ["memory"]
    message = checks["memory"]["message"]
    assert f"estimate {needed:.1f} GiB" in message and "does not fit; these fit: camera.views_per_step=1" in message
    status, checks = doctor(capsys, *model, "--memory-limit", f"{needed + 0.05:.3f}", *CPU)
    assert status == 0 and checks["memory"]["status"] == "ok"


def test_missing_shap_e_and_depth_model(tiny, tmp_path, capsys):
    status, checks = doctor(capsys, *tiny_args(tiny.model_dir, tiny), "init.kind=shap_e",  # after CPU's sphere: wins
                            f"init.shap_e_model={tmp_path / 'no-shap-e'}", f"sgc.depth_estimator={tmp_path / 'no-depth'}")
    assert status == 1 and set(failures(checks)) == {"shap-e", "depth model"}
    assert "init.shap_e_model=FOLDER" in checks["shap-e"]["message"]
    assert "sgc.depth_estimator=FOLDER" in checks["depth model"]["message"]


def test_float16_on_cpu_fails_with_the_fix(tiny, capsys):
    status, checks = doctor(capsys, *tiny_args(tiny.model_dir, tiny), "prior.dtype=float16")
    assert status == 1 and list(failures(checks)) == ["dtype"]
    assert "float16 needs a CUDA device" in checks["dtype"]["message"]


# ----- generate runs the same weight checks first --------------------------------------------
def test_generate_refuses_a_wrong_adapter_before_loading_any_model(tiny, tmp_path, monkeypatch, capsys):
    adapter = sdxl_width_adapter(tiny.model_dir, tmp_path / "ip-adapter_sdxl.safetensors")

    def must_not_load(*_args, **_kwargs):
        raise AssertionError("the prior was loaded before the weights were checked")

    monkeypatch.setattr(run_module, "DiffusersPrior", must_not_load)
    status = main(["generate", "--config", "sd15", "--prompt", "a cube", "--model", str(tiny.model_dir),
                   "--ip-adapter", str(adapter), "--image-encoder", str(tiny.image_encoder), "--out", str(tmp_path / "run"),
                   *CPU])
    err = capsys.readouterr().err
    assert status == 2
    assert "does not fit this model: its image tokens have width 2048" in err
    assert not (tmp_path / "run").exists()
