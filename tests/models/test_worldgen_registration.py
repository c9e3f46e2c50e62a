"""Depth registration (WonderZoom §3.2): weighted least-squares scale/shift, reliability weights and
the weighted refinement that pins reliable pixels to the coarse depth."""

import pytest
import torch

from models.worldgen import (
    DepthPrediction,
    align_scale_shift,
    refine_depth,
    register_depth,
    reliability_weights,
)

H = W = 48


pytestmark = pytest.mark.usefixtures("one_thread")


def _scene():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    depth = 2.0 + 0.8 * xx + 0.3 * yy + 0.1 * torch.sin(9 * xx) * torch.cos(7 * yy)
    return xx, yy, depth.double()


def test_registration_recovers_a_known_scale_and_shift_exactly():
    _, _, true = _scene()
    g = torch.Generator().manual_seed(0)
    alpha = torch.ones(H, W, dtype=torch.float64)
    # an affine-invariant depth prediction: d_pred = (d - t) / s
    reg = register_depth(DepthPrediction((true - 0.7) / 2.5), true, alpha, steps=0)
    assert reg.scale == pytest.approx(2.5, abs=1e-9) and reg.shift == pytest.approx(0.7, abs=1e-9)
    torch.testing.assert_close(reg.depth, true, atol=1e-9, rtol=0)
    # inverse depth: 1/d = s·disp + t
    disp = (1.0 / true - 0.05) / 3.0
    reg = register_depth(DepthPrediction(disp, "disparity"), true, alpha, steps=0)
    assert reg.scale == pytest.approx(3.0, abs=1e-9) and reg.shift == pytest.approx(0.05, abs=1e-9)
    torch.testing.assert_close(reg.depth, true, atol=1e-9, rtol=0)
    # only reliable pixels count: garbage where the coarse render has no coverage is ignored
    half = alpha.clone()
    half[:, W // 2 :] = 0.0
    noisy = (true - 0.7) / 2.5
    noisy[:, W // 2 :] = torch.rand(H, W - W // 2, generator=g, dtype=torch.float64) * 10
    reg = register_depth(DepthPrediction(noisy), true, half, steps=0, edge_tol=0)
    assert reg.scale == pytest.approx(2.5, abs=1e-9) and reg.shift == pytest.approx(0.7, abs=1e-9)
    assert reg.stats["reliable_fraction"] == pytest.approx(0.5)
    # weighted: the closed form equals the normal equations' solution
    x, y = torch.rand(100, generator=g, dtype=torch.float64), torch.rand(100, generator=g).double()
    w = torch.rand(100, generator=g, dtype=torch.float64)
    A = torch.stack([x, torch.ones_like(x)], 1) * w.sqrt()[:, None]
    ref = torch.linalg.lstsq(A, y * w.sqrt()).solution
    s, t = align_scale_shift(x, y, w)
    assert (s, t) == pytest.approx(ref.tolist(), abs=1e-12)
    assert align_scale_shift(x, 3 * x, w, with_shift=False) == pytest.approx((3.0, 0.0))


def test_reliability_weights_follow_alpha_and_drop_depth_edges():
    alpha = torch.linspace(0, 1, W).expand(H, W).clone()
    depth = torch.full((H, W), 2.0)
    w = reliability_weights(alpha, depth, min_alpha=0.5, edge_tol=0.1)
    assert (w[:, alpha[0] <= 0.5] == 0).all() and w[0, -1] == 1
    torch.testing.assert_close(w[0], ((alpha[0] - 0.5) / 0.5).clamp(0, 1))
    depth[H // 2 :] = 4.0  # a depth discontinuity: both rows next to it are unreliable
    w = reliability_weights(torch.ones(H, W), depth)
    assert (w[H // 2 - 1 : H // 2 + 1] == 0).all() and (w[: H // 2 - 1] == 1).all()
    depth[0, 0] = 0.0  # no depth: no weight
    assert reliability_weights(torch.ones(H, W), depth, edge_tol=0)[0, 0] == 0


def test_refinement_keeps_reliable_pixels_at_the_coarse_depth():
    """A prediction with a smooth non-affine warp: alignment alone leaves ~2 % error; the
    refinement pins the reliable half onto the coarse depth and continues smoothly elsewhere."""
    xx, yy, true = _scene()
    warp = 1 + 0.15 * ((xx - 0.4) ** 2 + (yy - 0.6) ** 2)
    pred = DepthPrediction((0.5 * true * warp).float())
    alpha = (xx < 0.6).double()
    reg = register_depth(pred, true.float(), alpha.float(), steps=150, lr=0.02, edge_tol=0)
    rel = ((reg.depth.double() - true) / true).abs()
    rel_aligned = ((reg.aligned.double() - true) / true).abs()
    reliable = alpha > 0
    assert rel_aligned[reliable].max() > 0.015  # the warp is not affine
    assert rel[reliable].max() < 0.005 and rel[reliable].mean() < 0.0015
    assert reg.stats["rel_rmse_refined"] < 0.15 * reg.stats["rel_rmse_aligned"]
    loss = reg.stats["refine_loss"]
    assert loss[1] < 0.2 * loss[0]
    # unreliable pixels: the correction continues smoothly across the border (no seam) and keeps
    # the prediction's own relative detail (the log-residual has no steps)
    ratio = (reg.depth.double() / reg.aligned.double()).log()
    assert ratio.diff(dim=1).abs().max() < 0.01 and ratio.diff(dim=0).abs().max() < 0.01


def test_refine_depth_without_weight_or_steps_is_the_identity_and_errors_are_clear():
    _, _, true = _scene()
    d = true.float()
    out, losses = refine_depth(d, d * 1.1, torch.zeros(H, W), steps=10)
    assert torch.equal(out, d) and losses == []
    with pytest.raises(ValueError, match="no reliable pixel"):
        register_depth(DepthPrediction(d), d, torch.zeros(H, W))
    with pytest.raises(ValueError, match="differ in size"):
        register_depth(DepthPrediction(d[:-1]), d, torch.ones(H, W))
    with pytest.raises(ValueError, match="depth kind"):
        DepthPrediction(d, "normals")


def test_registration_ignores_autograd_history_of_its_inputs():
    """Inputs that carry a graph (a differentiable render, an estimator run with grads on) are
    registered as plain values: refinement runs its own optimisation without touching them."""
    from models.worldgen.depth import DepthPrediction
    from models.worldgen.registration import register_depth

    g = torch.Generator().manual_seed(0)
    coarse = (1.0 + torch.rand(16, 16, generator=g)).requires_grad_()
    scale = torch.tensor(2.0, requires_grad=True)
    pred = DepthPrediction(value=(coarse * scale + 0.0) / 2.5, kind="depth")
    reg = register_depth(pred, coarse * 1.0, torch.ones(16, 16), steps=5)
    assert not reg.depth.requires_grad
    torch.testing.assert_close(reg.depth, coarse.detach(), atol=1e-2, rtol=1e-2)
