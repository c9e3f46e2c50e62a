"""Global point cloud of reference frames and its z-buffered renders (WorldFM anchors)."""

import numpy as np
import pytest
import torch

from datagen.anchors import auto_voxel_size, global_point_cloud, render_anchors, voxel_downsample
from models.geometry import make_K, unproject
from training.data.frame_task import FrameTaskConfig, augment_anchor

H, W = 40, 48
K = make_K(40.0, 40.0, W / 2, H / 2, dtype=torch.float64).numpy()


def _pose(x: float = 0.0) -> np.ndarray:
    c2w = np.eye(4)
    c2w[0, 3] = x
    return c2w


def _checker(h: int = H, w: int = W, cell: int = 4) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = 40 + 180 * (((x // cell) + (y // cell)) % 2)
    img[..., 1] = (x * 5) % 256
    img[..., 2] = (y * 6) % 256
    return img


def test_voxel_downsample_averages_points_and_colours_per_cell():
    pts = np.array([[0.1, 0.1, 0.1], [0.3, 0.3, 0.3], [1.5, 0.2, 0.2], [1.7, 0.4, 0.4]])
    cols = np.array([[0.0, 0, 0], [1, 1, 1], [0.2, 0.2, 0.2], [0.4, 0.4, 0.4]])
    p, c = voxel_downsample(pts, cols, 1.0)
    np.testing.assert_allclose(p, [[0.2, 0.2, 0.2], [1.6, 0.3, 0.3]], atol=1e-6)
    np.testing.assert_allclose(c, [[0.5, 0.5, 0.5], [0.3, 0.3, 0.3]], atol=1e-6)
    p0, c0 = voxel_downsample(pts, cols, 0.0)  # disabled
    np.testing.assert_array_equal(p0, pts.astype(np.float32))
    np.testing.assert_array_equal(c0, cols.astype(np.float32))
    assert p.dtype == c.dtype == np.float32


def test_auto_voxel_size_is_one_pixel_at_the_median_depth():
    depth = np.full((2, H, W), 2.0, np.float32)
    depth[1] = 4.0
    valid = depth > 0
    valid[1, :, : W // 2] = False  # median over valid pixels: more at 2 than at 4
    Ks = np.stack([K, K])
    assert auto_voxel_size(depth, Ks, valid) == pytest.approx(2.0 / 40.0)
    assert auto_voxel_size(depth, Ks, valid, px=2.0) == pytest.approx(4.0 / 40.0)
    assert auto_voxel_size(depth, Ks, np.zeros_like(valid)) == 0.0


def test_global_point_cloud_lifts_confident_pixels_onto_the_surface():
    rgb = np.stack([_checker(), _checker()])
    depth = np.full((2, H, W), 2.0, np.float32)
    depth[0, :5] = 0.0  # invalid rows
    conf = np.ones((2, H, W), np.float32)
    conf[1, :, :10] = 0.1  # below min_confidence
    Ks, c2w = np.stack([K, K]), np.stack([_pose(), _pose(0.3)])
    pts, cols = global_point_cloud(rgb, depth, Ks, c2w, conf, min_confidence=0.3, voxel_size=0)
    assert pts.shape == (H * W - 5 * W + H * W - 10 * H, 3) and cols.shape == pts.shape
    assert pts.dtype == np.float32 and 0 <= cols.min() and cols.max() <= 1
    np.testing.assert_allclose(pts[:, 2], 2.0, atol=1e-5)  # the plane z = 2 (both cameras)
    # equals the exact unprojection of the kept pixels, colours included (synthetic-clip path)
    full = unproject(torch.from_numpy(depth), torch.from_numpy(Ks), torch.from_numpy(c2w))
    keep = (depth > 0) & (conf >= 0.3)
    np.testing.assert_allclose(pts, full[torch.from_numpy(keep)].float().numpy(), atol=1e-6)
    np.testing.assert_allclose(cols, rgb[keep] / 255.0, atol=1e-6)
    # voxel merging: fewer points, still on the surface; max_points caps evenly
    merged, _ = global_point_cloud(rgb, depth, Ks, c2w, conf, voxel_size=0.2)
    assert 0 < len(merged) < len(pts) / 10
    np.testing.assert_allclose(merged[:, 2], 2.0, atol=0.1)
    auto, _ = global_point_cloud(rgb, depth, Ks, c2w, conf)  # 1 px at the median depth
    assert len(merged) < len(auto) < len(pts)
    capped, _ = global_point_cloud(rgb, depth, Ks, c2w, conf, voxel_size=0, max_points=100)
    assert len(capped) == 100


def test_render_anchors_reproduces_the_reference_view_and_shifts_with_the_camera():
    rgb = _checker()[None]
    depth = np.full((1, H, W), 2.0, np.float32)
    pts, cols = global_point_cloud(rgb, depth, K[None], _pose()[None], voxel_size=0)
    # back at the reference pose: every pixel covered, colours exact
    out, mask = render_anchors(pts, cols, K[None], _pose()[None], H, W, radius_px=0.5)
    assert out.shape == (1, H, W, 3) and out.dtype == np.uint8 and mask.dtype == bool
    assert mask.all()
    np.testing.assert_array_equal(out[0], rgb[0])
    # a camera moved right by 2 px worth (x = 2 * 2 / 40 = 0.1) sees the image shifted left by 2
    shift = 2 * 2.0 / 40.0
    out2, mask2 = render_anchors(pts, cols, K[None], _pose(shift)[None], H, W, radius_px=0.5)
    np.testing.assert_array_equal(out2[0, :, : W - 2], rgb[0, :, 2:])
    assert mask2[0, :, : W - 2].all() and not mask2[0, :, W - 1].any()
    # empty pixels are zero; batching by budget changes nothing
    assert (out2[0][~mask2[0]] == 0).all()
    poses = np.stack([_pose(), _pose(shift), _pose(-shift)])
    a = render_anchors(pts, cols, np.stack([K] * 3), poses, H, W)
    b = render_anchors(pts, cols, np.stack([K] * 3), poses, H, W, budget=1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_render_anchors_z_buffer_keeps_the_nearest_point():
    near = np.array([[0.0, 0.0, 1.0]], np.float32)
    far = np.array([[0.0, 0.0, 3.0]], np.float32)
    pts = np.concatenate([far, near])
    cols = np.array([[1.0, 0, 0], [0, 1.0, 0]], np.float32)
    out, mask = render_anchors(pts, cols, K[None], _pose()[None], H, W, radius_px=1.0)
    r, c = H // 2, W // 2  # the principal point lies on a pixel corner: 2 x 2 pixels share it
    assert mask[0, r, c] and tuple(out[0, r, c]) == (0, 255, 0)
    assert mask.sum() == 4
    empty, emask = render_anchors(np.zeros((0, 3)), np.zeros((0, 3)), K[None], _pose()[None], H, W)
    assert not emask.any() and not empty.any()


def test_anchors_feed_the_worldfm_augmentations():
    """The shuffling / masking augmentations of WorldFM §2.4.1 act on these renders at training
    time (training.data.frame_task.augment_anchor): masked pixels are zero in rgb and mask."""
    rgb = _checker()[None]
    depth = np.full((1, H, W), 2.0, np.float32)
    pts, cols = global_point_cloud(rgb, depth, K[None], _pose()[None], voxel_size=0)
    out, mask = render_anchors(pts, cols, K[None], _pose(0.1)[None], H, W)
    cfg = FrameTaskConfig(shuffle_prob=1.0, dropout_prob=1.0, block_mask_prob=1.0)
    a_rgb, a_mask, masked = augment_anchor(out[0], mask[0], np.random.default_rng(0), cfg)
    assert not masked and a_mask.sum() < mask.sum()
    assert (a_rgb[~a_mask] == 0).all()
