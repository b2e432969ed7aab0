"""Where the prior's weights come from, and the one-line errors when they are wrong."""

from __future__ import annotations

import json
import shutil

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import make_tiny_world, point_mini_prior_at

from tv3dg.errors import UserError
from tv3dg.priors import ip_adapter as ip_adapter_module
from tv3dg.priors.config import PriorConfig
from tv3dg.priors.diffusers_prior import DiffusersPrior
from tv3dg.priors.images import read_image


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("tiny"))


def copy_model(world, tmp_path):
    return shutil.copytree(world.model_dir, tmp_path / "model")


def edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_loads_a_hugging_face_id_from_the_local_cache_only(world, tmp_path, monkeypatch):
    snapshot = tmp_path / "hub" / "models--someone--tiny-sd" / "snapshots" / "0123abcd"
    shutil.copytree(world.model_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    prior = DiffusersPrior(PriorConfig(model="someone/tiny-sd", ip_adapter=None))
    assert prior.resolution == 16 and prior.num_train_timesteps == 1000
    with pytest.raises(UserError, match="not in the local Hugging Face cache|neither a folder"):
        DiffusersPrior(PriorConfig(model="someone/not-cached", ip_adapter=None))


def test_ip_adapter_from_the_local_cache_with_its_image_encoder(world, tmp_path, monkeypatch):
    snapshot = tmp_path / "hub" / "models--h94--IP-Adapter" / "snapshots" / "feed1234"
    (snapshot / "models").mkdir(parents=True)
    shutil.copy(world.ip_adapter, snapshot / "models" / "ip-adapter_sd15.safetensors")
    shutil.copytree(world.image_encoder, snapshot / "models" / "image_encoder")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("feed1234")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    prior = DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter="h94/IP-Adapter/models/ip-adapter_sd15.safetensors"))
    assert prior.has_image_prompt and prior.image_encoder is not None


def test_missing_model_folder(tmp_path):
    with pytest.raises(UserError, match="neither a folder nor a model in the local Hugging Face cache"):
        DiffusersPrior(PriorConfig(model=str(tmp_path / "nowhere"), ip_adapter=None))


def test_missing_bundled_weights_point_to_mini_train(tmp_path, monkeypatch):
    point_mini_prior_at(monkeypatch, tmp_path / "absent")
    with pytest.raises(UserError, match="tv3dg mini train"):
        DiffusersPrior(PriorConfig())


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda m: shutil.rmtree(m / "vae"), "missing vae/"),
        (lambda m: edit_json(m / "unet" / "config.json", addition_embed_type="text_time"), "SDXL"),
        (lambda m: edit_json(m / "unet" / "config.json", cross_attention_dim=64), "cross-attention width 64"),
        (lambda m: edit_json(m / "vae" / "config.json", _class_name="AutoencoderTiny"), "AutoencoderKL"),
        (lambda m: edit_json(m / "scheduler" / "scheduler_config.json", prediction_type="v_prediction"), "epsilon"),
        (lambda m: (m / "text_encoder" / "config.json").write_text("{not json"), "not readable JSON"),
    ],
)
def test_not_an_sd15_folder(world, tmp_path, breakage, message):
    model = copy_model(world, tmp_path)
    breakage(model)
    with pytest.raises(UserError, match=message) as error:
        DiffusersPrior(PriorConfig(model=str(model), ip_adapter=None))
    assert "\n" not in str(error.value)


def test_ip_adapter_without_image_encoder(world, tmp_path):
    lonely = tmp_path / "ip-adapter_sd15.safetensors"
    shutil.copy(world.ip_adapter, lonely)
    with pytest.raises(UserError, match="needs its CLIP image encoder.*--image-encoder"):
        DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=str(lonely)))
    prior = DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=str(lonely), image_encoder=str(world.image_encoder)))
    assert prior.has_image_prompt


def test_ip_adapter_for_another_model_is_rejected(world, tmp_path):
    weights = load_file(str(world.ip_adapter))
    weights["ip_adapter.1.to_k_ip.weight"] = torch.zeros(8, 32)
    shutil.copytree(world.image_encoder, tmp_path / "image_encoder")
    wrong = tmp_path / "ip-adapter_other.safetensors"
    save_file(weights, str(wrong))
    with pytest.raises(UserError, match="does not fit this model"):
        DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=str(wrong)))
    del weights["ip_adapter.1.to_k_ip.weight"], weights["ip_adapter.1.to_v_ip.weight"]
    save_file(weights, str(wrong))
    with pytest.raises(UserError, match="weights for 3 cross-attention layers, the UNet has 4"):
        DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=str(wrong)))


def test_ip_adapter_must_be_safetensors(world, tmp_path):
    pickled = tmp_path / "ip-adapter_sd15.bin"
    pickled.write_bytes(b"not unpickled")
    with pytest.raises(UserError, match="not .safetensors"):
        ip_adapter_module.resolve_ip_adapter(str(pickled))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"garbage")
    shutil.copytree(world.image_encoder, tmp_path / "image_encoder")
    with pytest.raises(UserError, match="not a readable safetensors file"):
        DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=str(broken)))


def test_visual_prompt_without_ip_adapter(world):
    prior = DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=None))
    with pytest.raises(UserError, match="visual prompt needs an IP-Adapter"):
        prior.prepare_conditions("a dog", torch.rand(3, 16, 16))


def test_unreadable_image(tmp_path):
    fake = tmp_path / "reference.png"
    fake.write_text("this is not a png")
    with pytest.raises(UserError, match="could not be read as an image"):
        read_image(fake)
    with pytest.raises(UserError, match="does not exist"):
        read_image(tmp_path / "absent.png")


def test_half_precision_needs_a_gpu(world):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="float16 needs a CUDA device"):
        DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=None, dtype="float16"))
