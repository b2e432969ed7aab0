"""SGC building blocks: foreground masks, the scale-invariant depth term, plug-in loading."""

import pytest
import torch

from tv3dg.calibrate.sgc import SGCConfig, foreground_mask, load_plugin, pearson_depth_loss
from tv3dg.errors import UserError


def test_foreground_mask_is_zero_on_white_and_one_on_the_object():
    images = torch.ones(1, 3, 4, 4)
    images[0, :, 1:3, 1:3] = torch.tensor([0.8, 0.1, 0.1])[:, None, None]
    mask = foreground_mask(images, threshold=0.1)
    assert mask[0, 0, 0, 0] == 0 and mask[0, 0, 1, 1] == 1
    assert mask.sum() == 4


def test_foreground_mask_ignores_the_background_noise_floor():
    images = torch.ones(1, 3, 4, 4) - 0.02  # a faint off-white, as sampled references have
    images[0, :, 1:3, 1:3] = 0.5
    mask = foreground_mask(images, threshold=0.1, tolerance=0.03)
    assert mask[0, 0, 0, 0] == 0 and mask[0, 0, 1, 1] == 1
    assert foreground_mask(images, threshold=0.1)[0, 0, 0, 0] == pytest.approx(0.2)
    with pytest.raises(UserError, match="background_tolerance"):
        foreground_mask(images, threshold=0.1, tolerance=0.2)
    with pytest.raises(UserError, match="background_tolerance"):  # caught with the config, before any model loads
        SGCConfig(background_tolerance=0.2)


def test_depth_term_ignores_scale_and_shift_but_not_shape():
    gen = torch.Generator().manual_seed(0)
    depth = torch.rand(2, 1, 8, 8, generator=gen)
    mask = torch.ones_like(depth)
    assert pearson_depth_loss(depth, 3 * depth + 5, mask) == pytest.approx(0.0, abs=1e-5)
    assert pearson_depth_loss(depth, -depth, mask) == pytest.approx(2.0, abs=1e-5)
    assert pearson_depth_loss(depth, torch.rand(2, 1, 8, 8, generator=gen), mask) > 0.5


def test_plugins_load_by_module_and_name_with_clear_errors():
    assert load_plugin("torch:sigmoid") is torch.sigmoid
    with pytest.raises(UserError, match="package.module:function"):
        load_plugin("no_colon")
    with pytest.raises(UserError, match="cannot load plug-in"):
        load_plugin("tv3dg.no_such_module:reward")
