"""SGC's built-in depth estimator on a tiny random DPT saved and loaded back like a real one, and
the depth term it feeds in a full generation run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_models import make_tiny_world
from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

from tv3dg.calibrate.depth import DepthEstimator, is_plugin
from tv3dg.errors import UserError
from tv3dg.pipeline.config import build_config
from tv3dg.pipeline.run import generate


@pytest.fixture(scope="module")
def dpt(tmp_path_factory):
    """A 2-layer DPT (ViT backbone, reassemble + fusion neck, depth head) with its image processor."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("dpt")
    config = DPTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32,
                       patch_size=16, backbone_out_indices=[0, 1], neck_hidden_sizes=[16, 32], reassemble_factors=[4, 2],
                       fusion_hidden_size=16)
    DPTForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(folder)
    return folder


def test_estimates_are_negated_disparity_at_the_image_size(dpt):
    images = torch.rand(2, 3, 24, 40, generator=torch.Generator().manual_seed(0))
    estimate = DepthEstimator(str(dpt), "disparity", torch.device("cpu"))
    depth = estimate(images)
    assert depth.shape == (2, 1, 24, 40) and torch.isfinite(depth).all()
    model, processor = DPTForDepthEstimation.from_pretrained(dpt), DPTImageProcessor.from_pretrained(dpt)
    pixels = processor(images=[i.permute(1, 2, 0).numpy() for i in images], do_rescale=False, return_tensors="pt").pixel_values
    with torch.no_grad():
        raw = model(pixel_values=pixels).predicted_depth.unsqueeze(1)
    raw = F.interpolate(raw, size=(24, 40), mode="bicubic", align_corners=False)
    torch.testing.assert_close(depth, -raw)  # larger disparity = nearer: the estimate is its negation
    assert torch.allclose(DepthEstimator(str(dpt), "depth", torch.device("cpu"))(images), -depth)


def test_plugins_and_models_are_told_apart_and_a_missing_model_is_one_line(tmp_path):
    assert is_plugin("my_pkg.depth:estimate") and not is_plugin("LiheYoung/depth-anything-small-hf")
    with pytest.raises(UserError) as err:
        DepthEstimator(str(tmp_path / "no-model"), "disparity", torch.device("cpu"))
    assert "sgc.depth_estimator=FOLDER" in str(err.value) and "\n" not in str(err.value)


def test_a_generation_run_uses_the_depth_term(dpt, tmp_path):
    world = make_tiny_world(tmp_path / "tiny")
    flags = {"prompt": "a red cube", "prior": {"model": str(world.model_dir), "ip_adapter": str(world.ip_adapter)}}
    config = build_config("mini", flags, [
        "steps=3", "init.kind=sphere", "init.num_points=300", "sgc.start_step=0", "sgc.sample_steps=2",
        "sgc.num_views=2", "visual_prompt.sample_steps=2", f"sgc.depth_estimator={dpt}", "sgc.depth_weight=1",
        "export.turntable_frames=2", "export.turntable_resolution=32", "export.views=2", "export.mesh.resolution=32",
    ])
    result = generate(config, tmp_path / "run", progress=False)
    assert "sgc_depth" in result.metrics["losses"]
    assert 0.0 <= result.metrics["losses"]["sgc_depth"] <= 2.0  # 1 - Pearson correlation
