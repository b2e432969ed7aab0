"""Densification and pruning, and the optimiser-state surgery that goes with them."""

import math

import pytest
import torch

from tv3dg.gaussians.densify import DensifyConfig, DensifyStrategy, ScreenStats
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.optim import OptimConfig, build_optimizer
from tv3dg.gaussians.surgery import append_points, keep_points
from tv3dg.render.cameras import orbit_cameras
from tv3dg.render.rasterizer import rasterize


def gaussians_with(scales, opacities) -> Gaussians:
    n = len(scales)
    return Gaussians(
        means=torch.arange(n * 3, dtype=torch.float32).reshape(n, 3) * 0.1,
        log_scales=torch.log(torch.tensor(scales, dtype=torch.float32))[:, None].expand(n, 3).clone(),
        quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        opacity_logits=torch.logit(torch.tensor(opacities, dtype=torch.float32))[:, None],
        sh_dc=torch.arange(n, dtype=torch.float32)[:, None, None].expand(n, 1, 3).clone(),
        sh_rest=torch.zeros(n, 3, 3),
    )


def adam_steps(g: Gaussians, opt: torch.optim.Optimizer, steps: int = 3) -> None:
    """Steps with a different gradient on every row, so each row's Adam moments are recognisable."""
    for _ in range(steps):
        opt.zero_grad()
        rows = torch.arange(1, g.num_points + 1, dtype=torch.float32)
        loss = sum((p * rows.reshape(-1, *([1] * (p.dim() - 1)))).sum() for p in g.parameters())
        loss.backward()
        opt.step()


def fake_render(grad_ndc: list[float], width: int = 100, radii: list[float] | None = None) -> ScreenStats:
    """One camera's statistics whose projected centres carry the given NDC gradient norms (along x)."""
    n = len(grad_ndc)
    grad = torch.zeros(1, n, 2)
    grad[0, :, 0] = torch.tensor(grad_ndc) / (width / 2)
    return ScreenStats(grad, torch.tensor([radii or [3.0] * n]), torch.ones(1, n, dtype=torch.bool), width, width)


def state_of(opt: torch.optim.Optimizer, name: str) -> dict:
    group = next(g for g in opt.param_groups if g["name"] == name)
    return opt.state[group["params"][0]]


def test_keep_and_append_move_adam_moments_with_their_rows():
    g = gaussians_with([0.1] * 5, [0.5] * 5)
    opt = build_optimizer(g, OptimConfig())
    adam_steps(g, opt)
    before = {name: {k: v.clone() for k, v in state_of(opt, name).items()} for name in ("means", "sh_dc")}
    keep = torch.tensor([True, True, False, True, True])
    keep_points(g, opt, keep)
    append_points(g, opt, {name: torch.ones_like(p[:2]) for name, p in g.named_parameters()})
    assert g.num_points == 6
    for name in ("means", "sh_dc"):
        group = next(grp for grp in opt.param_groups if grp["name"] == name)
        assert group["params"][0] is getattr(g, name)
        state = state_of(opt, name)
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(state[key][:4], before[name][key][keep])
            assert torch.equal(state[key][4:], torch.zeros_like(state[key][4:]))
        assert torch.equal(state["step"], before[name]["step"])
    adam_steps(g, opt, 1)  # the resized optimiser still steps


def test_densify_clones_small_splits_large_and_prunes_transparent():
    #            clone   split   keep    prune (transparent)
    g = gaussians_with([0.005, 0.05, 0.05, 0.05], [0.5, 0.5, 0.5, 0.001])
    opt = build_optimizer(g, OptimConfig())
    adam_steps(g, opt)
    kept_moment = state_of(opt, "means")["exp_avg"][2].clone()
    parent_mean, parent_scale = g.means[1].detach().clone(), g.scales[1].detach().clone()
    strategy = DensifyStrategy(DensifyConfig(start_step=0, interval=100, grad_threshold=2e-4, clone_max_scale=0.01))
    report = strategy.step_post_backward(g, opt, fake_render([1e-3, 1e-3, 1e-5, 1e-5]), step=100)
    assert (report.cloned, report.split, report.pruned, report.num_points) == (1, 1, 1, 5)
    origin = torch.round(g.sh_dc[:, 0, 0].detach())  # sh_dc holds each original row's index (Adam moved it < 0.01)
    assert sorted(origin.tolist()) == [0.0, 0.0, 1.0, 1.0, 2.0]  # row 0 twice, row 1 as two children, row 2 kept
    children = origin == 1.0
    torch.testing.assert_close(g.scales[children], (parent_scale / 1.6).expand(2, 3))
    assert ((g.means[children] - parent_mean).abs() < 5 * parent_scale).all()
    assert not torch.equal(g.means[children][0], g.means[children][1])  # sampled, not copied
    row2 = origin == 2.0
    torch.testing.assert_close(state_of(opt, "means")["exp_avg"][row2][0], kept_moment)
    new_rows = ~row2 & ~(torch.arange(5) == 0)
    assert torch.equal(state_of(opt, "means")["exp_avg"][new_rows], torch.zeros(3, 3))
    assert all(state_of(opt, name)["exp_avg"].shape[0] == 5 for name in ("log_scales", "quats", "opacity_logits", "sh_rest"))
    adam_steps(g, opt, 1)


def test_nothing_happens_outside_the_densify_schedule():
    g = gaussians_with([0.005, 0.05], [0.5, 0.5])
    opt = build_optimizer(g, OptimConfig())
    strategy = DensifyStrategy(DensifyConfig(start_step=500, stop_step=1000, interval=100))
    for step in (100, 550, 1000):
        report = strategy.step_post_backward(g, opt, fake_render([1.0, 1.0]), step=step)
        assert report.cloned == report.split == 0 and g.num_points == 2


def test_mean_gradient_counts_only_views_where_visible():
    g = gaussians_with([0.005], [0.5])
    opt = build_optimizer(g, OptimConfig())
    strategy = DensifyStrategy(DensifyConfig(start_step=0, interval=100, grad_threshold=1e-3))
    strategy.update_stats(g, fake_render([1.5e-3]))
    hidden = fake_render([0.0])
    hidden.visible[:] = False
    for _ in range(5):
        strategy.update_stats(g, hidden)  # would drag the mean to 2.5e-4 if counted
    assert strategy.step(g, opt, step=100).cloned == 1


def test_opacity_reset_caps_opacity_and_clears_its_moments_only():
    g = gaussians_with([0.05] * 3, [0.9, 0.005, 0.5])
    opt = build_optimizer(g, OptimConfig())
    adam_steps(g, opt)
    means_moment = state_of(opt, "means")["exp_avg"].clone()
    strategy = DensifyStrategy(DensifyConfig(opacity_reset_interval=300, opacity_reset_value=0.01, start_step=10_000))
    report = strategy.step(g, opt, step=300)
    assert report.opacity_reset
    opacity = g.opacities[:, 0].detach()
    assert (opacity <= 0.01 + 1e-6).all() and opacity[1] < 0.01  # already-low ones are not raised
    assert torch.equal(state_of(opt, "opacity_logits")["exp_avg"], torch.zeros(3, 1))
    assert torch.equal(state_of(opt, "means")["exp_avg"], means_moment)


def test_size_pruning_starts_at_its_step():
    g = gaussians_with([0.05, 0.5, 0.05], [0.5, 0.5, 0.5])  # row 1 is too large in the world
    opt = build_optimizer(g, OptimConfig())
    config = DensifyConfig(start_step=0, interval=100, size_prune_start_step=150, prune_max_scale=0.1,
                           prune_max_screen_fraction=0.2)
    strategy = DensifyStrategy(config)
    render = fake_render([0.0, 0.0, 0.0], radii=[3.0, 3.0, 40.0])  # row 2 covers 0.4 of the 100 px image
    assert strategy.step_post_backward(g, opt, render, step=100).pruned == 0
    report = strategy.step_post_backward(g, opt, fake_render([0.0, 0.0, 0.0], radii=[3.0, 3.0, 40.0]), step=200)
    assert report.pruned == 2 and g.num_points == 1 and g.sh_dc[0, 0, 0] == 0.0


def test_the_screen_size_threshold_is_a_fraction_of_the_image():
    """The same Gaussian footprint, relative to the image, is pruned at every resolution."""
    for width in (32, 512):
        g = gaussians_with([0.05, 0.05], [0.5, 0.5])
        opt = build_optimizer(g, OptimConfig())
        strategy = DensifyStrategy(DensifyConfig(start_step=0, interval=100, size_prune_start_step=0,
                                                 prune_max_screen_fraction=0.5))
        radii = [0.4 * width, 0.6 * width]  # 0.4 and 0.6 of the image
        report = strategy.step_post_backward(g, opt, fake_render([0.0, 0.0], width=width, radii=radii), step=100)
        assert report.pruned == 1 and g.sh_dc[0, 0, 0] == 0.0


def test_max_points_keeps_the_strongest_candidates():
    g = gaussians_with([0.005] * 4, [0.5] * 4)
    opt = build_optimizer(g, OptimConfig())
    strategy = DensifyStrategy(DensifyConfig(start_step=0, interval=100, max_points=6))
    report = strategy.step_post_backward(g, opt, fake_render([1e-3, 5e-3, 2e-3, 4e-3]), step=100)
    assert report.cloned == 2 and g.num_points == 6
    assert sorted(g.sh_dc[:, 0, 0].tolist()) == [0.0, 1.0, 1.0, 2.0, 3.0, 3.0]


def test_stats_come_from_a_real_render_and_need_a_backward():
    g = Gaussians.from_points(torch.randn(40, 3) * 0.4, torch.rand(40, 3), scale=0.05, opacity=0.5)
    cameras = orbit_cameras([0.0, 30.0], [0.0, 90.0], 3.0, 40.0, 24)
    strategy = DensifyStrategy(DensifyConfig())
    out = rasterize(g, cameras, torch.ones(3))
    with pytest.raises(RuntimeError, match="backward"):
        strategy.update_stats(g, out.screen_stats())
    out.rgb.mean().backward()
    strategy.update_stats(g, out.screen_stats())
    assert torch.equal(strategy.grad_count, out.visible.sum(0).float())
    assert (strategy.grad_sum[out.visible.any(0)] > 0).all()
    assert torch.equal(strategy.max_screen_fraction, out.radii.amax(0) / 24)
    assert math.isfinite(float(strategy.grad_sum.sum()))


def test_a_seeded_generator_makes_splits_reproducible():
    def split_means(seed: int) -> torch.Tensor:
        g = gaussians_with([0.05, 0.05], [0.5, 0.5])
        strategy = DensifyStrategy(DensifyConfig(start_step=0, interval=100), torch.Generator().manual_seed(seed))
        strategy.step_post_backward(g, build_optimizer(g, OptimConfig()), fake_render([1e-3, 1e-3]), step=100)
        return g.means.detach()

    assert torch.equal(split_means(3), split_means(3)) and not torch.equal(split_means(3), split_means(4))
