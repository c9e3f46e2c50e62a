"""Scale-adaptive Gaussian surfels (WonderZoom §3.1): tent modulation (Prop. 1), culling, 2DGS."""

import math

import pytest
import torch

from models.render import render_gaussians
from models.surfels import (
    SurfelSet,
    add_level,
    camera_log_scale,
    merge,
    modulate,
    modulation_weights,
    render_surfels,
)

LEVELS = torch.tensor([0.0, 1.0, 2.0, 4.0])  # uneven spacing on purpose (log2 units)
F, W, H = 40.0, 32, 32


pytestmark = pytest.mark.usefixtures("one_thread")


def _plane(z: float, spacing: float, native: float, color=(1.0, 0.5, 0.25)) -> SurfelSet:
    """Fronto-parallel surfels on a grid covering the camera's view of the plane at depth z."""
    half = 1.2 * z * W / (2 * F)  # the view's half-width at depth z, plus a margin
    g = torch.arange(-half, half + 1e-9, spacing)
    yy, xx = torch.meshgrid(g, g, indexing="ij")
    n = xx.numel()
    means = torch.stack([xx.flatten(), yy.flatten(), torch.full((n,), z)], -1)
    return SurfelSet(
        means,
        torch.tensor([1.0, 0, 0, 0]).expand(n, 4).clone(),
        torch.full((n, 2), spacing),
        torch.full((n,), 0.9),
        torch.tensor(color).expand(n, 3).clone(),
        torch.full((n,), native),
    )


def _camera():
    K = torch.tensor([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]])
    return torch.eye(4)[None], K[None]


def test_weights_sum_to_one_at_every_scale_in_the_hierarchy():
    """Prop. 1: one surfel per level; Σ_l w_l(ρ) = 1 (±1e-6) on a dense grid of ρ, inside and
    beyond the hierarchy's ends."""
    native = LEVELS.clone()
    rhos = torch.linspace(-1.0, 5.0, 60001)  # includes every level exactly
    R, L = len(rhos), len(native)
    W_ = modulation_weights(native.repeat(R), rhos.repeat_interleave(L), LEVELS).view(R, L)
    scalar = torch.stack([modulation_weights(native, float(r), LEVELS) for r in rhos[::1000]])
    torch.testing.assert_close(scalar, W_[::1000])
    assert ((W_ >= 0) & (W_ <= 1)).all()
    assert (W_.sum(1) - 1).abs().max().item() < 1e-6
    # at a level's own scale only that level is visible
    for i, lam in enumerate(LEVELS.tolist()):
        w = modulation_weights(native, lam, LEVELS)
        torch.testing.assert_close(w, torch.nn.functional.one_hot(torch.tensor(i), 4).float())
    # at most two adjacent levels are non-zero anywhere
    nz = W_ > 0
    assert nz.sum(1).max() <= 2
    # per-surfel rendering scales work the same way
    r = torch.rand(4, 1000, generator=torch.Generator().manual_seed(0)) * 6 - 1
    per = torch.stack([modulation_weights(native.expand(1000, 4)[:, i], r[i], LEVELS)
                       for i in range(4)])  # fmt: skip
    assert per.shape == (4, 1000)
    cross = torch.stack([modulation_weights(native, r[0, j], LEVELS) for j in range(20)])
    assert (cross.sum(1) - 1).abs().max() < 1e-6


def test_tent_shape_monotonic_and_clamped():
    rhos = torch.linspace(-2.0, 6.0, 801)
    for i, lam in enumerate(LEVELS.tolist()):
        w = modulation_weights(LEVELS[i].expand(len(rhos)), rhos, LEVELS)
        below, above = w[rhos <= lam], w[rhos >= lam]
        assert (below.diff() >= 0).all() and (above.diff() <= 0).all()  # rises, then falls
        if i == 0:
            assert (below == 1).all()  # coarsest: clamped to 1 when zoomed out beyond
        else:
            assert w[rhos <= LEVELS[i - 1]].max() == 0
        if i == len(LEVELS) - 1:
            assert (above == 1).all()  # finest: clamped to 1 when zoomed in beyond
        else:
            assert w[rhos >= LEVELS[i + 1]].max() == 0
    # linear in the log-scale difference: half-way between levels 2 and 4 -> 0.5 / 0.5
    w = modulation_weights(LEVELS, 3.0, LEVELS)
    torch.testing.assert_close(w, torch.tensor([0.0, 0.0, 0.5, 0.5]))
    with pytest.raises(ValueError):
        modulation_weights(torch.tensor([0.5]), 0.0, LEVELS)  # not a level
    with pytest.raises(ValueError):
        modulation_weights(torch.tensor([0.0]), 0.0, torch.tensor([1.0, 0.0]))


def test_culling_removes_zero_weight_surfels():
    coarse, fine = _plane(2.0, 0.1, 0.0), _plane(2.0, 0.05, 1.0)
    far = _plane(2.0, 0.1, 4.0)
    both = merge(coarse, fine, far)
    out = modulate(both, LEVELS, 0.25)
    assert len(out) == len(coarse) + len(fine)  # level-4 surfels have weight 0 at ρ = 0.25
    torch.testing.assert_close(out.opacities[: len(coarse)], torch.full((len(coarse),), 0.9 * 0.75))
    torch.testing.assert_close(out.opacities[len(coarse) :], torch.full((len(fine),), 0.9 * 0.25))
    assert len(modulate(both, LEVELS, 0.0)) == len(coarse)
    assert len(modulate(both, LEVELS, 1e-5, cull_eps=1e-4)) == len(coarse)  # w = 1e-5 culled
    vm, K = _camera()
    empty = render_surfels(far, vm, K, W, H, LEVELS, render_log_scale=0.0)
    assert empty.alpha.abs().max() == 0 and empty.rgb.shape == (1, 3, H, W)


def test_surfel_plane_renders_its_exact_depth():
    """Two levels of surfels tiling the plane z = 2, rendered at several scales: depth is 2 (to
    1e-4) wherever covered, and the image is fully covered."""
    z = 2.0
    surfels = add_level(_plane(z, 0.1, 0.0), _plane(z, 0.05, 99.0), native_scale=1.0)
    assert torch.equal(surfels.native_scale.unique(), torch.tensor([0.0, 1.0]))
    vm, K = _camera()
    for rho in (-1.0, 0.0, 0.3, 0.5, 0.999, 1.0):
        out = render_surfels(surfels, vm, K, W, H, LEVELS, render_log_scale=rho, backend="torch")
        covered = out.alpha[0, 0] > 0.5
        assert covered.float().mean() == 1.0
        assert (out.depth[0, 0][covered] - z).abs().max().item() < 1e-4
        assert out.normals is not None


def test_modulated_render_equals_rendering_the_modulated_set():
    coarse, fine = _plane(2.0, 0.1, 0.0, (1.0, 0, 0)), _plane(2.0, 0.05, 1.0, (0, 0, 1.0))
    surfels = merge(coarse, fine)
    vm, K = _camera()
    out = render_surfels(surfels, vm, K, W, H, LEVELS, render_log_scale=0.5, backend="torch")
    m = modulate(surfels, LEVELS, 0.5)
    pad = torch.cat([m.scales, torch.full((len(m), 1), 1e-6)], -1)
    ref = render_gaussians(m.means, m.quats, pad, m.opacities, m.colors, vm, K, W, H,
                           mode="2dgs", backend="torch")  # fmt: skip
    torch.testing.assert_close(out.rgb, ref.rgb)
    # zooming in moves the colour from the coarse (red) to the fine (blue) level
    reds = [render_surfels(surfels, vm, K, W, H, LEVELS, render_log_scale=r).rgb[0, 0].mean()
            for r in (0.0, 0.5, 1.0)]  # fmt: skip
    blues = [render_surfels(surfels, vm, K, W, H, LEVELS, render_log_scale=r).rgb[0, 2].mean()
             for r in (0.0, 0.5, 1.0)]  # fmt: skip
    assert reds[0] > reds[1] > reds[2] and blues[0] < blues[1] < blues[2]


def test_camera_log_scale_and_auto_scale():
    """ρ = log2(f / z): a plane at z = 2 seen with f = 40 is at log2(20); with the levels set to
    that scale the per-surfel ('auto') scale picks exactly that level."""
    K = torch.tensor([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]])
    rho = camera_log_scale(K, torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(rho, torch.tensor([math.log2(20.0), math.log2(10.0)]))
    lam0 = math.log2(20.0)
    levels = torch.tensor([lam0, lam0 + 1])
    surfels = merge(_plane(2.0, 0.1, lam0, (1.0, 0, 0)), _plane(2.0, 0.05, lam0 + 1, (0, 0, 1.0)))
    vm, K1 = _camera()
    auto = render_surfels(surfels, vm, K1, W, H, levels, backend="torch")
    fixed = render_surfels(surfels, vm, K1, W, H, levels, render_log_scale=lam0, backend="torch")
    torch.testing.assert_close(auto.rgb, fixed.rgb, rtol=0, atol=1e-5)
    assert auto.rgb[0, 2].max() < 1e-6  # fine level fully faded out at the coarse scale
    # doubling the focal length (zoom ×2) shows the fine level only
    K2 = K1.clone()
    K2[:, :2, :2] *= 2
    zoomed = render_surfels(surfels, vm, K2, W, H, levels, backend="torch")
    assert zoomed.rgb[0, 0].max() < 1e-6 and zoomed.rgb[0, 2].min() > 0.5
