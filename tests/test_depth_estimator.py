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
from tv3dg.pipeline.run import Generation


@pytest.fixture(scope="module")
def dpt(tmp_path_factory):
    """A 2-layer DPT (ViT backbone, reassemble + fusion neck, depth head) with its image processor."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("dpt")
    config = DPTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32,
                       patch_size=16, backbone_out_indices=[0, 1], neck_hidden_sizes=[16, 32], reassemble_factors=[4, 2],
                       fusion_hidden_size=16, initializer_range=0.2)
    # at the default initializer_range (0.02) this small DPT's output is constant (std ~1e-9 over an image),
    # which would make the depth term 1 whatever the render; 0.2 gives depth maps that vary with the image
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
        "steps=1", "init.kind=sphere", "init.num_points=300", "sgc.start_step=0", "sgc.sample_steps=2",
        "sgc.num_views=2", "visual_prompt.sample_steps=2", f"sgc.depth_estimator={dpt}", "sgc.depth_weight=1",
    ])
    generation = Generation(config, tmp_path / "run", resume=False, progress=False)
    calibration = generation.calibration
    references = calibration.images
    # the run's targets are the estimator's depths of its own reference views
    torch.testing.assert_close(calibration.depths, DepthEstimator(str(dpt), "disparity", torch.device("cpu"))(references))

    # At a reference view, a render whose depth is the estimated one scores lower than one whose depth is
    # inverted (near and far swapped), and the term's gradient reaches the rendered depth.
    views, alpha = torch.arange(2), torch.ones(2, 1, *references.shape[-2:])
    _, logs = calibration.loss(views, references, alpha, calibration.depths, step=0)
    wrong = (-calibration.depths).requires_grad_(True)
    total, wrong_logs = calibration.loss(views, references, alpha, wrong, step=0)
    assert logs["sgc_depth"] < 0.01 and wrong_logs["sgc_depth"] > 1.99  # 1 - Pearson: 0 when equal, 2 when inverted
    total.backward()
    assert float(wrong.grad.abs().sum()) > 0  # away from the optimum the depth term pulls on the rendered depth
    assert "sgc_depth" in generation.train_step(0)  # and the loop logs it at every SGC step
