import pytest
import torch

from models.geometry import K_from_fov, look_at, make_K, project
from models.render import render_points


def _camera(H=24, W=32):
    K = make_K(40.0, 40.0, W / 2, H / 2, dtype=torch.float64)
    return K, torch.eye(4, dtype=torch.float64)


def test_point_lands_on_its_pixel_with_its_colour():
    K, c2w = _camera()
    # pixel (u, v) = (5, 7) has its centre at (5.5, 7.5); put the point exactly there at depth 2.
    x = (5.5 - 16) / 40 * 2.0
    y = (7.5 - 12) / 40 * 2.0
    pts = torch.tensor([[x, y, 2.0]], dtype=torch.float64)
    col = torch.tensor([[0.2, 0.6, 0.9]])
    rgb, mask, depth = render_points(pts, col, K, c2w, 24, 32, radius_px=0)
    assert rgb.shape == (3, 24, 32) and mask.shape == (24, 32) and depth.shape == (24, 32)
    assert mask.sum() == 1 and mask[7, 5]
    torch.testing.assert_close(rgb[:, 7, 5], col[0])
    assert depth[7, 5] == pytest.approx(2.0, abs=1e-6)
    assert (rgb[:, ~mask] == 0).all() and (depth[~mask] == 0).all()


def test_radius_covers_neighbouring_pixel_centres():
    K, c2w = _camera()
    x, y = (5.5 - 16) / 40 * 2.0, (7.5 - 12) / 40 * 2.0
    pts = torch.tensor([[x, y, 2.0]], dtype=torch.float64)
    _, mask, _ = render_points(pts, torch.ones(1, 3), K, c2w, 24, 32, radius_px=1.0)
    expected = {(7, 5), (6, 5), (8, 5), (7, 4), (7, 6)}  # centres within 1 px: a plus sign
    assert {tuple(p) for p in torch.nonzero(mask).tolist()} == expected


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_nearer_point_occludes_farther_regardless_of_order(order):
    K, c2w = _camera()
    pts = torch.tensor([[0.1, 0.05, 1.5], [0.2, 0.1, 3.0]], dtype=torch.float64)  # same ray
    cols = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    idx = list(order)
    rgb, mask, depth = render_points(pts[idx], cols[idx], K, c2w, 24, 32, radius_px=0)
    uv, _ = project(pts[:1], K, c2w)
    u, v = int(uv[0, 0]), int(uv[0, 1])
    assert mask.sum() == 1
    torch.testing.assert_close(rgb[:, v, u], torch.tensor([1.0, 0.0, 0.0]))
    assert depth[v, u] == pytest.approx(1.5, abs=1e-6)


def test_points_behind_or_outside_are_dropped_and_empty_pixels_masked():
    K, c2w = _camera()
    pts = torch.tensor([[0.0, 0.0, -2.0], [50.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    rgb, mask, depth = render_points(pts, torch.ones(3, 3), K, c2w, 24, 32)
    assert not mask.any() and (rgb == 0).all() and (depth == 0).all()


def test_batch_matches_single_renders_and_general_pose():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(500, 3, generator=g, dtype=torch.float64) + torch.tensor([0, 0, 0.0])
    cols = torch.rand(500, 3, generator=g)
    K = K_from_fov(60.0, 20, 24, dtype=torch.float64)
    eyes = torch.tensor([[0.0, -4.0, 1.0], [3.0, 2.0, 0.5]], dtype=torch.float64)
    c2w = look_at(eyes, torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, 0, 1.0]).double())
    rgb_b, mask_b, depth_b = render_points(pts, cols, K, c2w, 20, 24)
    assert rgb_b.shape == (2, 3, 20, 24)
    for i in range(2):
        rgb, mask, depth = render_points(pts, cols, K, c2w[i], 20, 24)
        assert torch.equal(mask, mask_b[i]) and torch.equal(rgb, rgb_b[i])
        assert torch.equal(depth, depth_b[i])
    # every visible pixel shows the nearest point that covers it
    uv, z = project(pts, K, c2w[0])
    u, v = uv[:, 0].floor().long(), uv[:, 1].floor().long()
    inside = (u >= 0) & (u < 24) & (v >= 0) & (v < 20) & (z > 0)
    for k in torch.nonzero(inside)[:, 0].tolist():
        assert mask_b[0, v[k], u[k]]
        assert depth_b[0, v[k], u[k]] <= z[k] + 1e-5
