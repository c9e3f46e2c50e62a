"""Plane-sweep MVS on an analytic, textured three-plane scene rendered inside the test."""

import math

import pytest
import torch
import torch.nn.functional as F

from models.geometry import camera_rays, look_at, make_K, scale_K, unproject
from models.mvs import (
    depth_range_from_points,
    estimate_depths,
    filter_depths,
    geometric_consistency,
    plane_sweep_depth,
    select_neighbours,
    warp_sources,
)

H, W = 64, 80
RANGE = (1.8, 6.0)
FLAT = (0.4, 1.3, -1.0, -0.1)  # textureless square on the wall: x0, x1, y0, y1
CONF = 0.3  # "confident" pixels
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


pytestmark = pytest.mark.usefixtures("one_thread_module")


def _texture(a: torch.Tensor, b: torch.Tensor, seed: int) -> torch.Tensor:
    """Sum of random sinusoids per channel: plane coords ``[...]`` -> colour ``[..., 3]``."""
    g = torch.Generator().manual_seed(seed)
    freq = 1.0 + 3.5 * torch.rand(3, 8, generator=g, dtype=torch.float64)
    ang = 2 * math.pi * torch.rand(3, 8, generator=g, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(3, 8, generator=g, dtype=torch.float64)
    arg = 2 * math.pi * freq * (a[..., None, None] * ang.cos() + b[..., None, None] * ang.sin())
    return (0.5 + 0.07 * torch.sin(arg + phase).sum(-1)).clamp(0, 1)


def _planes():
    """(normal, offset, inside(p), colour(p)) with ``normal . p = offset``, world units."""
    tilt = math.radians(35)
    n_panel = torch.tensor([math.sin(tilt), 0.0, -math.cos(tilt)], dtype=torch.float64)
    c_panel = torch.tensor([-0.5, 0.1, 2.8], dtype=torch.float64)
    e_u = torch.tensor([math.cos(tilt), 0.0, math.sin(tilt)], dtype=torch.float64)

    def wall_colour(p):
        col = _texture(p[..., 0], p[..., 1], 1)
        x0, x1, y0, y1 = FLAT
        flat = (p[..., 0] > x0) & (p[..., 0] < x1) & (p[..., 1] > y0) & (p[..., 1] < y1)
        return torch.where(flat[..., None], torch.tensor([0.6, 0.45, 0.3]).double(), col)

    def panel_inside(p):
        q = p - c_panel
        return ((q @ e_u).abs() < 0.5) & (q[..., 1].abs() < 0.6)

    def panel_colour(p):
        q = p - c_panel
        return _texture(q @ e_u, q[..., 1], 2)

    wall = (
        torch.tensor([0.0, 0.0, 1.0]).double(),
        4.0,
        lambda p: p[..., 0] == p[..., 0],
        wall_colour,
    )
    floor = (
        torch.tensor([0.0, 1.0, 0.0]).double(),
        1.0,
        lambda p: p[..., 2] < 4.0,
        lambda p: _texture(p[..., 0], p[..., 2], 3),
    )
    panel = (n_panel, float(n_panel @ c_panel), panel_inside, panel_colour)
    return [wall, floor, panel]


def render(K, c2w, ss=3, planes=None):
    """Analytic ray-plane render: image ``[3, H, W]`` (``ss``^2 supersampled), depth ``[H, W]``."""
    K, c2w = K.double(), c2w.double()
    planes = _planes() if planes is None else planes
    out = []
    for s in (ss, 1):
        o, d = camera_rays(scale_K(K, s), c2w, H * s, W * s)
        t_best = torch.full(d.shape[:-1], math.inf, dtype=torch.float64)
        col = torch.zeros(*d.shape[:-1], 3, dtype=torch.float64)
        for n, off, inside, colour in planes:
            t = (off - o @ n) / (d @ n)
            p = o + t[..., None] * d
            hit = (t > 1e-6) & inside(p) & (t < t_best)
            t_best = torch.where(hit, t, t_best)
            col = torch.where(hit[..., None], colour(p), col)
        img = F.avg_pool2d(col.permute(2, 0, 1)[None], s)[0]
        depth = t_best * (d @ c2w[:3, 2])
        out.append((img, depth))
    return out[0][0].float(), out[1][1].float()


def make_cameras(n=5):
    """``n`` cameras on a short horizontal arc (radius 4 around the wall centre) ``[n, 4, 4]``."""
    ang = torch.deg2rad(torch.linspace(-6.0, 6.0, n, dtype=torch.float64))
    bob = 0.05 * (-1.0) ** torch.arange(n, dtype=torch.float64)  # small vertical offsets
    eye = torch.stack([4 * ang.sin(), bob, 4 - 4 * ang.cos()], -1)
    target = torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64).expand(n, 3)
    up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64).expand(n, 3)
    return look_at(eye, target, up).float()


@pytest.fixture(scope="module")
def scene():
    K = make_K(70.0, 70.0, W / 2, H / 2).expand(5, 3, 3).contiguous()
    c2w = make_cameras()
    imgs, depths = zip(*(render(K[i], c2w[i]) for i in range(5)))
    return torch.stack(imgs), torch.stack(depths), K, c2w


def _sweep(scene, ref=2, range_=RANGE, **kw):
    imgs, _, K, c2w = scene
    src = [i for i in range(imgs.shape[0]) if i != ref]
    return plane_sweep_depth(imgs[ref], imgs[src], K[ref], c2w[ref], K[src], c2w[src], range_, **kw)


def _abs_rel(pred, gt, mask):
    return ((pred - gt).abs() / gt)[mask].mean().item()


def _flat_interior(depth, K, c2w):
    """Pixels ``[H, W]`` whose 5x5 window (plus supersampling margin) sees only the flat square."""
    p = unproject(depth, K, c2w)
    x0, x1, y0, y1 = FLAT
    flat = (p[..., 0] > x0) & (p[..., 0] < x1) & (p[..., 1] > y0) & (p[..., 1] < y1)
    flat &= (p[..., 2] - 4.0).abs() < 1e-3
    return -F.max_pool2d(-flat.float()[None], 7, stride=1, padding=3)[0] > 0.5


@pytest.fixture(scope="module")
def sweep(scene):
    return _sweep(scene)


@pytest.fixture(scope="module")
def sparse_points(scene):
    """400 "SfM" points: random pixels of the true depth maps, lifted to world space."""
    _, depths, K, c2w = scene
    pts = unproject(depths, K, c2w).reshape(-1, 3)
    return pts[torch.randperm(pts.shape[0], generator=torch.Generator().manual_seed(0))[:400]]


@pytest.fixture(scope="module")
def pipeline(scene, sparse_points):
    imgs, _, K, c2w = scene
    return estimate_depths(imgs, K, c2w, num_neighbours=4, points_for_range=sparse_points)


def test_warp_at_true_plane_depth_reproduces_reference():
    K = make_K(70.0, 70.0, W / 2, H / 2)
    up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    # Smooth texture (wavelength >= 16 px) so that bilinear interpolation error is small.
    wall = (up.new_tensor([0.0, 0.0, 1.0]), 4.0, lambda p: p[..., 0] == p[..., 0])
    wall += (lambda p: _texture(0.25 * p[..., 0], 0.25 * p[..., 1], 1),)
    c2w_ref = look_at(up.new_zeros(3), up.new_tensor([0.0, 0.0, 4.0]), up).float()
    eyes = up.new_tensor([[0.3, -0.1, 0.2], [-0.25, 0.15, -0.1]])
    targets = up.new_tensor([[0.2, 0.1, 4.0], [-0.3, 0.0, 4.0]])
    c2w_src = look_at(eyes, targets, up.expand(2, 3)).float()
    ref, ref_depth = render(K, c2w_ref, planes=[wall])
    torch.testing.assert_close(ref_depth, torch.full_like(ref_depth, 4.0))  # fronto-parallel
    src = torch.stack([render(K, c, planes=[wall])[0] for c in c2w_src])
    depths = torch.tensor([4.0, 3.96, 4.04, 3.0])
    warped, valid = warp_sources(src, K, c2w_ref, K.expand(2, 3, 3), c2w_src, depths, (H, W))
    assert warped.shape == (4, 2, 3, H, W) and valid.shape == (4, 2, H, W)
    assert valid[0].float().mean() > 0.7
    err = torch.stack([(warped[i] - ref).abs().mean(1)[valid[i]].mean() for i in range(4)])
    assert err[0] < 2e-3 and (warped[0] - ref).abs().mean(1)[valid[0]].max() < 0.01
    assert err[0] < 0.8 * err[1:3].min() and err[3] > 10 * err[0]  # minimum at the true depth
    assert (warped.permute(0, 1, 3, 4, 2)[~valid] == 0).all()  # invalid samples are zero


@pytest.mark.parametrize("robust", ["truncated_zncc", "census", "truncated_sad"])
def test_plane_sweep_accuracy_on_confident_pixels(scene, sweep, robust):
    out = sweep if robust == "truncated_zncc" else _sweep(scene, robust=robust)
    gt = scene[1][2]
    depth, conf = out["depth"], out["confidence"]
    assert depth.shape == conf.shape == out["cost"].shape == (H, W)
    assert depth.dtype == conf.dtype == torch.float32
    assert all(torch.isfinite(v).all() for v in out.values())
    assert ((conf >= 0) & (conf <= 1)).all() and (depth >= 0).all()
    assert torch.equal(depth > 0, conf > 0)  # zero where invalid
    confident = conf > CONF
    assert confident.float().mean() >= 0.6
    assert _abs_rel(depth, gt, confident) < 0.05
    # Confidence ranks errors: confident pixels are more accurate than all valid ones.
    assert _abs_rel(depth, gt, confident) < _abs_rel(depth, gt, depth > 0)


def test_subplane_refinement_beats_winner_take_all(scene):
    gt = scene[1][2]
    fine = _sweep(scene, num_depths=16)
    wta = _sweep(scene, num_depths=16, refine=False)
    m = (fine["confidence"] > CONF) & (wta["confidence"] > CONF)
    assert m.float().mean() > 0.6
    assert _abs_rel(fine["depth"], gt, m) < 0.75 * _abs_rel(wta["depth"], gt, m)
    # WTA depths sit exactly on the planes; refined ones in between.
    planes = _sweep(scene, num_depths=16, refine=False, return_cost_volume=True)["depths"]
    on_plane = (wta["depth"][m][:, None] - planes).abs().amin(-1) < 1e-5
    assert on_plane.all()
    assert ((fine["depth"][m][:, None] - planes).abs().amin(-1) > 1e-3).float().mean() > 0.5


def test_chunking_does_not_change_result(scene):
    a = _sweep(scene, num_depths=16, chunk=3, return_cost_volume=True)
    b = _sweep(scene, num_depths=16, chunk=64, return_cost_volume=True)
    assert a["cost_volume"].shape == (16, H, W)
    for key in ("depth", "confidence", "cost_volume"):
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-6)


def test_textureless_patch_gets_low_confidence(scene, sweep):
    _, depths, K, c2w = scene
    flat = _flat_interior(depths[2], K[2], c2w[2])
    assert flat.sum() >= 40
    conf = sweep["confidence"]
    assert conf[flat].max() < 0.1
    assert conf[~flat].mean() > 0.6
    assert (sweep["depth"][flat] == 0).all()


def test_consistency_rejects_corrupted_patch_and_keeps_the_rest(scene):
    _, depths, K, c2w = scene
    clean, count_clean = geometric_consistency(depths, K, c2w, min_views=2)
    assert clean.float().mean() > 0.9  # true depths agree (except occlusions / out of view)
    assert count_clean.shape == (5, H, W) and count_clean.max() == 4

    bad = depths.clone()
    bad[2, 8:24, 48:72] *= 1.1
    mask, count = geometric_consistency(bad, K, c2w, min_views=2)
    assert not mask[2, 8:24, 48:72].any()
    outside = torch.ones(5, H, W, dtype=torch.bool)
    outside[2, 8:24, 48:72] = False
    kept = mask[clean & outside].float().mean()
    assert kept > 0.97
    assert (count[[0, 1, 3, 4]] < count_clean[[0, 1, 3, 4]]).any()  # others lost one vote

    conf = torch.ones_like(bad)
    fd, fc = filter_depths(bad, conf, K, c2w, min_views=2)
    assert (fd[2, 8:24, 48:72] == 0).all() and (fc[2, 8:24, 48:72] == 0).all()
    torch.testing.assert_close(fd[mask], bad[mask])
    torch.testing.assert_close(fc, torch.where(mask, count / 4.0, torch.zeros_like(fc)))


def test_consistency_with_neighbour_lists(scene):
    _, depths, K, c2w = scene
    nb = torch.tensor([[1, -1], [0, 2], [1, 3], [2, 4], [3, -1]])
    mask, count = geometric_consistency(depths, K, c2w, nb, min_views=2)
    assert count[0].max() <= 1 and count[2].max() <= 2
    assert mask[0].float().mean() > 0.8  # min_views capped by the single neighbour


def test_select_neighbours_skips_zero_baseline_and_wide_angles():
    eye = torch.tensor([[0, 0, 0], [0, 0, 0], [0.3, 0, 0], [0.6, 0, 0], [0.2, 0, 0]]).double()
    target = torch.tensor([[0, 0, 4], [0, 0, 4], [0.3, 0, 4], [0.6, 0, 4], [5.0, 0, 0]]).double()
    c2w = look_at(eye, target, torch.tensor([0.0, -1.0, 0.0]).double().expand(5, 3))
    nb, score = select_neighbours(c2w, 4.0, num_neighbours=4)
    assert nb.shape == (5, 4)
    assert sorted(nb[0, :2].tolist()) == [2, 3]  # not the duplicate (1), not the sideways view (4)
    assert nb[0, 2:].tolist() == [-1, -1]
    assert (score[0, :2] > 0.5).all() and (score[0, 2:] == 0).all()
    assert 4 not in nb[:4].tolist() and (nb[4] == -1).all()


def test_depth_range_from_points():
    K = make_K(70.0, 70.0, W / 2, H / 2).expand(2, 3, 3)
    c2w = torch.eye(4).expand(2, 4, 4).clone()
    c2w[1, :3, :3] = torch.diag(torch.tensor([-1.0, 1.0, -1.0]))  # view 1 looks down -z
    z = torch.linspace(2.0, 6.0, 101)
    pts = torch.stack([torch.zeros_like(z), torch.zeros_like(z), z], -1)
    pts = torch.cat([pts, torch.tensor([[100.0, 0.0, 3.0]])])  # outside the image
    r = depth_range_from_points(pts, K, c2w, (H, W), percentiles=(0.0, 100.0), margin=0.1)
    torch.testing.assert_close(r[0], torch.tensor([1.8, 6.6]))
    assert torch.isnan(r[1]).all()  # nothing in front of view 1


def test_pipeline_depth_confidence_and_coverage(scene, pipeline):
    _, gt, _, _ = scene
    depth, conf = pipeline
    assert depth.shape == conf.shape == (5, H, W) and depth.dtype == torch.float32
    assert torch.isfinite(depth).all() and torch.isfinite(conf).all()
    assert ((conf >= 0) & (conf <= 1)).all()
    assert (conf[depth == 0] == 0).all()
    valid = depth > 0
    assert valid.float().mean() >= 0.6
    assert _abs_rel(depth, gt, valid) < 0.05
    assert _abs_rel(depth, gt, conf > CONF) < 0.02


def test_depth_scale_follows_pose_scale(scene, sparse_points, pipeline):
    imgs, _, K, c2w = scene
    c2w2 = c2w.clone()
    c2w2[:, :3, 3] *= 2.0
    depth2, conf2 = estimate_depths(imgs, K, c2w2, points_for_range=2.0 * sparse_points)
    depth1, conf1 = pipeline
    both = (depth1 > 0) & (depth2 > 0)
    assert both.float().mean() > 0.95 * (depth1 > 0).float().mean()
    ratio = depth2[both] / depth1[both]
    assert (ratio - 2.0).abs().max() < 0.02
    torch.testing.assert_close(conf2[both], conf1[both], rtol=1e-3, atol=1e-3)
    # A scale that is not a power of two (not bit-exact in floating point): plane sweep alone.
    s = 0.37
    c2w_s = c2w.clone()
    c2w_s[:, :3, 3] *= s
    small = _sweep((imgs, None, K, c2w_s), range_=(s * RANGE[0], s * RANGE[1]))["depth"]
    ref = _sweep(scene)["depth"]
    both = (small > 0) & (ref > 0)
    assert both.float().mean() > 0.9
    assert ((small[both] / ref[both] - s).abs() < 1e-3 * s).float().mean() > 0.99


def test_pipeline_uses_depth_range_fallback(scene):
    imgs, gt, K, c2w = scene
    with pytest.raises(ValueError):
        estimate_depths(imgs[:2], K[:2], c2w[:2])
    # Three views, 3 deg apart: 1 % depth agreement is below the matching precision; use 2 %.
    kw = dict(depth_range=RANGE, num_depths=32, max_rel_depth=0.02)
    depth, _ = estimate_depths(imgs[1:4], K[1:4], c2w[1:4], **kw)
    valid = depth > 0
    assert valid.float().mean() > 0.5
    assert _abs_rel(depth, gt[1:4], valid) < 0.05


def test_invalid_arguments(scene):
    with pytest.raises(ValueError):
        _sweep(scene, robust="sift")
    with pytest.raises(ValueError):
        _sweep(scene, window=4)


@pytest.mark.gpu
@cuda
def test_plane_sweep_on_cuda_matches_cpu(scene, sweep):
    cuda_scene = tuple(t.cuda() for t in scene)
    out = _sweep(cuda_scene)
    assert out["depth"].device.type == "cuda"
    d_gpu, d_cpu = out["depth"].cpu(), sweep["depth"]
    both = (d_gpu > 0) & (d_cpu > 0)
    assert both.float().mean() > 0.95 * (d_cpu > 0).float().mean()
    rel = (d_gpu[both] - d_cpu[both]).abs() / d_cpu[both]
    assert rel.median() < 1e-4 and (rel < 1e-2).float().mean() > 0.98
    depth, conf = estimate_depths(cuda_scene[0], cuda_scene[2], cuda_scene[3], depth_range=RANGE)
    assert depth.device.type == "cuda" and conf.device.type == "cuda"
    assert _abs_rel(depth.cpu(), scene[1], depth.cpu() > 0) < 0.05
