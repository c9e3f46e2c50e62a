"""Pure-torch Gaussian renderer (CPU): analytic footprints, occlusion, depth, normals, gradients."""

import math

import pytest
import torch

from models.geometry import look_at
from models.render.gaussians import render_gaussians, resolve_backend, viewmats_from_c2w

F, W, H = 100.0, 65, 65  # odd size: the principal point (32.5, 32.5) is pixel (32, 32)'s centre
EPS2D = 0.3


def _cam(C: int = 1, dtype=torch.float32):
    K = torch.tensor([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]], dtype=dtype)
    return torch.eye(4, dtype=dtype).expand(C, 4, 4), K.expand(C, 3, 3)


def _render(means, scales, opacities, colors, quats=None, mode="3dgs", **kw):
    quats = torch.tensor([1.0, 0, 0, 0]).expand(len(means), 4) if quats is None else quats
    vm, K = _cam()
    return render_gaussians(
        means, quats, scales, opacities, colors, vm, K, W, H, mode=mode, backend="torch", **kw
    )


def _pixel_to_point(u: float, v: float, z: float) -> list[float]:
    """World point (identity camera) projecting to continuous pixel coordinates (u, v)."""
    return [(u - W / 2) * z / F, (v - H / 2) * z / F, z]


def test_backend_auto_is_torch_on_cpu():
    assert resolve_backend("auto", torch.device("cpu")) == "torch"
    with pytest.raises(RuntimeError):
        resolve_backend("gsplat", torch.device("cpu"))


@pytest.mark.parametrize("col,row", [(32, 32), (20, 40)])
def test_isotropic_gaussian_matches_analytic_blob(col, row):
    z, s, o = 2.0, 0.05, 0.8
    means = torch.tensor([_pixel_to_point(col + 0.5, row + 0.5, z)])
    out = _render(means, torch.full((1, 3), s), torch.tensor([o]), torch.tensor([[1.0, 0.5, 0.25]]))
    assert out.rgb.shape == (1, 3, H, W) and out.alpha.shape == out.depth.shape == (1, 1, H, W)
    assert out.normals is None
    alpha = out.alpha[0, 0]
    assert divmod(int(alpha.argmax()), W) == (row, col)
    assert alpha[row, col].item() == pytest.approx(o, abs=1e-6)  # analytic peak
    # EWA: Σ2d = s² J Jᵀ + eps2d I; on the optical axis J = f/z I, i.e. σ_px² = (f s / z)² + 0.3.
    x, y = means[0, 0].item(), means[0, 1].item()
    J = torch.tensor([[F / z, 0, -F * x / z**2], [0, F / z, -F * y / z**2]], dtype=torch.float64)
    cov = s**2 * J @ J.T + EPS2D * torch.eye(2, dtype=torch.float64)
    if (col, row) == (32, 32):
        torch.testing.assert_close(cov, ((F * s / z) ** 2 + EPS2D) * torch.eye(2).double())
    prec = torch.linalg.inv(cov)
    for dx, dy in [(1, 0), (0, 2), (3, -1), (-2, 4), (5, 5), (6, -6)]:
        d = torch.tensor([dx, dy], dtype=torch.float64)
        expected = o * math.exp(-0.5 * float(d @ prec @ d))
        expected = expected if expected >= 1 / 255 else 0.0
        assert alpha[row + dy, col + dx].item() == pytest.approx(expected, abs=2e-6)
    assert alpha[row, col + 12].item() == 0.0  # beyond the 1/255 cut-off
    torch.testing.assert_close(out.rgb[0, :, row, col], torch.tensor([1.0, 0.5, 0.25]) * o)
    depth = out.depth[0, 0]
    assert torch.allclose(depth[alpha > 0], torch.tensor(z), atol=1e-5)
    assert (depth[alpha == 0] == 0).all()


def test_background_fills_transmittance():
    means = torch.tensor([_pixel_to_point(32.5, 32.5, 3.0)])
    bg = torch.tensor([0.0, 0.0, 1.0])
    out = _render(
        means,
        torch.full((1, 3), 0.05),
        torch.tensor([0.6]),
        torch.tensor([[1.0, 0, 0]]),
        background=bg,
    )
    a = out.alpha[0, 0]
    torch.testing.assert_close(out.rgb[0, 0], a)
    torch.testing.assert_close(out.rgb[0, 2], 1 - a)


def _two_layers(front_first: bool, o1=0.9, o2=0.7):
    means = torch.tensor([_pixel_to_point(32.5, 32.5, 2.0), _pixel_to_point(32.5, 32.5, 4.0)])
    scales = torch.tensor([[0.2] * 3, [0.4] * 3])  # same footprint: 10 px sigma in both
    opac = torch.tensor([o1, o2])
    colors = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    order = [0, 1] if front_first else [1, 0]
    return _render(means[order], scales[order], opac[order], colors[order])


def test_nearer_gaussian_occludes_regardless_of_input_order():
    a, b = _two_layers(True), _two_layers(False)
    torch.testing.assert_close(a.rgb, b.rgb, rtol=0, atol=1e-7)
    torch.testing.assert_close(a.depth, b.depth, rtol=0, atol=1e-6)
    o1, o2 = 0.9, 0.7
    rgb = a.rgb[0, :, 32, 32]
    torch.testing.assert_close(rgb, torch.tensor([o1, 0.0, o2 * (1 - o1)]), atol=1e-6, rtol=0)
    assert a.alpha[0, 0, 32, 32].item() == pytest.approx(1 - (1 - o1) * (1 - o2), abs=1e-6)
    w1, w2 = o1, o2 * (1 - o1)
    assert a.depth[0, 0, 32, 32].item() == pytest.approx((w1 * 2 + w2 * 4) / (w1 + w2), abs=1e-5)
    assert (a.rgb[0, 0] >= a.rgb[0, 2]).all()  # red (front) dominates everywhere


def test_opaque_gaussian_depth_and_transmittance_cutoff():
    # An opaque front layer (alpha 0.995) leaves T = 5e-3; the back layer would take T below
    # 1e-4, so (as in gsplat) the pixel stops before it: it contributes nothing.
    means = torch.tensor([_pixel_to_point(32.5, 32.5, 1.5), _pixel_to_point(32.5, 32.5, 3.0)])
    scales = torch.tensor([[0.3] * 3, [0.6] * 3])
    out = _render(
        means, scales, torch.tensor([0.995, 0.995]), torch.tensor([[1.0, 0, 0], [0, 1, 0]])
    )
    assert out.alpha[0, 0, 32, 32].item() == pytest.approx(0.995, abs=1e-6)
    assert out.rgb[0, 1, 32, 32].item() == 0.0
    assert out.depth[0, 0, 32, 32].item() == pytest.approx(1.5, abs=1e-5)


def test_culls_behind_camera_and_stays_finite():
    means = torch.tensor([[0.0, 0.0, -2.0], [0.0, 0.0, 0.005], [0.0, 0.0, 2.0]], requires_grad=True)
    scales = torch.full((3, 3), 0.1, requires_grad=True)
    opac = torch.full((3,), 0.5, requires_grad=True)
    colors = torch.eye(3)
    out = _render(means, scales, opac, colors)
    assert out.rgb[0, 0].sum() == 0 and out.rgb[0, 1].sum() == 0 and out.rgb[0, 2].sum() > 0
    (out.rgb.sum() + out.depth.sum()).backward()
    for t in (means, scales, opac):
        assert torch.isfinite(t.grad).all()
    assert (means.grad[:2] == 0).all() and means.grad[2].abs().sum() > 0


def _random_scene(n: int, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * torch.tensor([1.2, 1.2, 1.0])
    means[:, 2] += 3.0
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = 0.03 + 0.08 * torch.rand(n, 3, generator=g, dtype=dtype)
    opac = 0.3 + 0.6 * torch.rand(n, generator=g, dtype=dtype)
    colors = torch.rand(n, 3, generator=g, dtype=dtype)
    return means, quats, scales, opac, colors


@pytest.mark.parametrize("mode", ["3dgs", "2dgs"])
def test_gradients_reach_all_parameters(mode):
    params = [p.requires_grad_() for p in _random_scene(40, 0)]
    vm, K = _cam(2)
    vm = vm.clone()
    vm[1, 0, 3] = 0.1  # second camera shifted
    out = render_gaussians(*params, vm, K, W, H, mode=mode, backend="torch")
    target = torch.rand_like(out.rgb, generator=torch.Generator().manual_seed(1))
    loss = ((out.rgb - target) ** 2).mean() + out.depth.mean() * 1e-2
    if out.normals is not None:
        loss = loss + out.normals[:, 2].mean()
    loss.backward()
    for name, p in zip(["means", "quats", "scales", "opacities", "colors"], params):
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("mode", ["3dgs", "2dgs"])
def test_gradcheck_float64(mode):
    means, quats, scales, opac, colors = _random_scene(3, 2, torch.float64)
    scales = scales * 3
    vm, K = _cam(1, torch.float64)
    Ks = K.clone()
    Ks[:, :2] *= 16 / W  # 16 x 16 image, same field of view

    g = torch.Generator().manual_seed(3)
    proj = [torch.randn(1, c, 16, 16, generator=g, dtype=torch.float64) for c in (3, 1, 1, 3)]

    def f(means, quats, scales, opac, colors):
        out = render_gaussians(
            means, quats, scales, opac, colors, vm, Ks, 16, 16, mode=mode, backend="torch"
        )
        maps = [out.rgb, out.alpha, out.depth] + ([out.normals] if mode == "2dgs" else [])
        return tuple((m * w).sum() for m, w in zip(maps, proj))  # random projections

    inputs = [t.clone().requires_grad_() for t in (means, quats, scales, opac, colors)]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_fit_colours_and_means_reduces_loss():
    gt = _random_scene(20, 3)
    vm, K = _cam()
    Ks = K.clone()
    Ks[:, :2] *= 32 / W

    def render(means, colors):
        return render_gaussians(
            means, gt[1], gt[2], gt[3], colors, vm, Ks, 32, 32, backend="torch"
        ).rgb

    target = render(gt[0], gt[4])
    g = torch.Generator().manual_seed(4)
    means = (gt[0] + 0.05 * torch.randn(gt[0].shape, generator=g)).requires_grad_()
    colors = torch.rand(gt[4].shape, generator=g).requires_grad_()
    opt = torch.optim.Adam([means, colors], lr=0.02)
    losses = []
    for _ in range(50):
        loss = ((render(means, colors) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses[::10]


def test_batch_and_camera_dims_match_separate_renders():
    scenes = [_random_scene(30, s) for s in (5, 6)]
    vm, K = _cam(2)
    vm = vm.clone()
    vm[1, :3, 3] = torch.tensor([0.2, -0.1, 0.3])
    stacked = [torch.stack(x) for x in zip(*scenes)]
    colors_pv = stacked[4][:, None].expand(2, 2, 30, 3).clone()
    colors_pv[:, 1] = 1 - colors_pv[:, 1]  # per-view colours
    bg = torch.tensor([0.1, 0.2, 0.3])
    out = render_gaussians(
        *stacked[:4], colors_pv, vm.expand(2, 2, 4, 4), K.expand(2, 2, 3, 3), W, H,
        background=bg, backend="torch",
    )  # fmt: skip
    assert out.rgb.shape == (2, 2, 3, H, W)
    for b in range(2):
        for c in range(2):
            one = render_gaussians(
                *scenes[b][:4], colors_pv[b, c], vm[c : c + 1], K[:1], W, H,
                background=bg, backend="torch",
            )  # fmt: skip
            torch.testing.assert_close(out.rgb[b, c], one.rgb[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(out.depth[b, c], one.depth[0], atol=1e-5, rtol=0)


def test_viewmats_from_c2w_renders_point_at_look_at_target():
    c2w = look_at(
        torch.tensor([1.0, -0.5, -2.0]), torch.tensor([0.2, 0.1, 1.0]), torch.tensor([0, -1.0, 0])
    )
    vm = viewmats_from_c2w(c2w)[None]
    torch.testing.assert_close(vm[0] @ c2w, torch.eye(4), atol=1e-6, rtol=0)
    _, K = _cam()
    out = render_gaussians(
        torch.tensor([[0.2, 0.1, 1.0]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.05),
        torch.tensor([0.9]), torch.ones(1, 3), vm, K, W, H, backend="torch",
    )  # fmt: skip
    assert divmod(int(out.alpha[0, 0].argmax()), W) == (32, 32)


def test_surfel_facing_camera_footprint_and_normal():
    z, su, sv, o = 2.0, 0.1, 0.05, 0.9
    means = torch.tensor([_pixel_to_point(32.5, 32.5, z)])
    scales = torch.tensor([[su, sv, 0.0]])
    colors = torch.tensor([[0.2, 0.4, 0.6]])
    for quat in ([1.0, 0, 0, 0], [0.0, 1.0, 0, 0]):  # normal towards / away from the camera
        out = _render(means, scales, torch.tensor([o]), colors, torch.tensor([quat]), mode="2dgs")
        alpha = out.alpha[0, 0]
        sx, sy = F * su / z, F * sv / z  # exact for a fronto-parallel surfel: 5 px, 2.5 px
        for dx, dy in [(0, 0), (3, 0), (0, 2), (-4, 3), (7, -1)]:
            expected = o * math.exp(-0.5 * ((dx / sx) ** 2 + (dy / sy) ** 2))
            expected = expected if expected >= 1 / 255 else 0.0
            assert alpha[32 + dy, 32 + dx].item() == pytest.approx(expected, abs=2e-6)
        assert out.normals.shape == (1, 3, H, W)
        n = out.normals[0, :, 32, 32]
        torch.testing.assert_close(n, torch.tensor([0.0, 0.0, -o]), atol=1e-6, rtol=0)
        unit = out.normals[0] / alpha.clamp_min(1e-8)
        assert torch.allclose(unit[:, alpha > 0], torch.tensor([0.0, 0, -1])[:, None], atol=1e-5)
        assert torch.allclose(out.depth[0, 0][alpha > 0], torch.tensor(z), atol=1e-5)


def test_surfel_edge_on_renders_almost_nothing():
    z, s, o = 2.0, 0.1, 0.9
    scales = torch.tensor([[s, s, 0.0]])
    face = _render(
        torch.tensor([_pixel_to_point(32.5, 32.5, z)]), scales, torch.tensor([o]), torch.ones(1, 3),
        mode="2dgs",
    )  # fmt: skip
    # Centre on a pixel boundary (u = 32) and turn the surfel about y until its plane contains the
    # line of sight. (A pixel-centre ray lying inside the plane would be a 0/0 intersection whose
    # value depends on float rounding, in gsplat too.)
    means = torch.tensor([_pixel_to_point(32.0, 32.5, z)])
    theta = math.atan2(z, -means[0, 0].item())  # normal (sin θ, 0, cos θ) ⟂ (x, 0, z)
    quat = torch.tensor([[math.cos(theta / 2), 0, math.sin(theta / 2), 0]])
    edge = _render(means, scales, torch.tensor([o]), torch.ones(1, 3), quat, mode="2dgs")
    face_mass, edge_mass = face.alpha.sum().item(), edge.alpha.sum().item()
    assert face_mass == pytest.approx(o * 2 * math.pi * (F * s / z) ** 2, rel=0.02)
    # Only the screen-space low-pass (variance 1/2 px²) is left: a dot of mass about o·π.
    assert edge_mass <= o * math.pi * 1.05 and edge_mass < 0.05 * face_mass
    ys, xs = (edge.alpha[0, 0] > 0).nonzero().unbind(-1)
    assert (xs - 31.5).abs().max() <= 2.5 and (ys - 32).abs().max() <= 2
