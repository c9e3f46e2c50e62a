"""Pose estimation: pycolmap SfM (in its worker process) on an analytically rendered room."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datagen.camera_formats import CameraSet
from datagen.ingest.sfm import (
    ColmapEstimator,
    KnownPosesEstimator,
    SfmError,
    SfmResult,
    pycolmap_version,
)
from models.geometry import apply_sim3, ate_rmse, rotation_error_deg, umeyama

HALF = np.array([2.0, 1.5, 2.0])  # the room is the box |x| <= 2, |y| <= 1.5, |z| <= 2 (metres)
H, W, F = 240, 320, 260.0
K_TRUE = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]])


def _wall_textures(seed: int = 0, res: int = 512) -> list[np.ndarray]:
    """Six [res, res, 3] colour value-noise textures (three octaves: blobs SIFT can find)."""
    rng = np.random.default_rng(seed)
    textures = []
    for _ in range(6):
        tex = np.zeros((res, res, 3))
        for cells, weight in ((6, 0.3), (24, 0.35), (96, 0.35)):
            u = np.linspace(0, cells, res, endpoint=False)
            i, f = u.astype(int), u - u.astype(int)
            f = f * f * (3 - 2 * f)
            A = np.zeros((res, cells + 1))
            A[np.arange(res), i], A[np.arange(res), i + 1] = 1 - f, f
            grid = rng.random((3, cells + 1, cells + 1))
            tex += weight * np.stack([A @ g @ A.T for g in grid], -1)
        textures.append((tex - tex.min()) / (tex.max() - tex.min()))
    return textures


def _render(textures, c2w: np.ndarray, k1: float = 0.0) -> np.ndarray:
    """uint8 [H, W, 3] view from inside the room; SIMPLE_RADIAL lens (x_d = x (1 + k1 r^2))."""
    v, u = np.mgrid[0:H, 0:W] + 0.5
    xd, yd = (u - K_TRUE[0, 2]) / F, (v - K_TRUE[1, 2]) / F
    x, y = xd, yd
    for _ in range(20):  # undistort the pixel's normalised coordinates by fixed-point iteration
        s = 1 + k1 * (x * x + y * y)
        x, y = xd / s, yd / s
    d = np.stack([x, y, np.ones_like(x)], -1) @ c2w[:3, :3].T
    o = c2w[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_axes = np.where(d != 0, (np.sign(d) * HALF - o) / d, np.inf)
    axis = np.argmin(t_axes, -1)
    p = o + d * np.take_along_axis(t_axes, axis[..., None], -1)
    img = np.zeros((H, W, 3))
    res = textures[0].shape[0]
    for a in range(3):
        for side, sign in enumerate((-1, 1)):
            m = (axis == a) & (np.sign(d[..., a]) == sign)
            b, c = [k for k in range(3) if k != a]
            tx = (p[m, b] / HALF[b] + 1) / 2 * (res - 1)
            ty = (p[m, c] / HALF[c] + 1) / 2 * (res - 1)
            x0 = np.clip(tx.astype(int), 0, res - 2)
            y0 = np.clip(ty.astype(int), 0, res - 2)
            fx, fy = (tx - x0)[:, None], (ty - y0)[:, None]
            T = textures[2 * a + side]
            top = T[y0, x0] * (1 - fx) + T[y0, x0 + 1] * fx
            bottom = T[y0 + 1, x0] * (1 - fx) + T[y0 + 1, x0 + 1] * fx
            img[m] = top * (1 - fy) + bottom * fy
    return (img * 255 + 0.5).clip(0, 255).astype(np.uint8)


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, [0.0, -1.0, 0.0])
    x /= np.linalg.norm(x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, np.cross(z, x), z], -1)
    c2w[:3, 3] = eye
    return c2w


def _arc(n: int) -> np.ndarray:
    """[n, 4, 4] OpenCV c2w along a smooth ~1 m arc, all looking into one corner (3 walls)."""
    poses = []
    for a in np.linspace(-0.6, 0.6, n):
        eye = np.array([0.9 * np.sin(a) - 0.3, -0.2 + 0.1 * a, -0.8 + 0.4 * np.cos(a)])
        poses.append(_look_at(eye, np.array([1.5 + 0.3 * a, 0.9, 1.6])))
    return np.stack(poses)


@pytest.fixture(scope="module")
def room():
    textures = _wall_textures()
    poses = _arc(10)
    return textures, poses


def _wall_distance(points: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest wall of the room."""
    return np.abs(np.abs(points) - HALF).min(axis=1)


@pytest.mark.slow
def test_colmap_sfm_recovers_room_trajectory_and_undistorts(room):
    textures, poses = room
    frames = np.stack([_render(textures, c2w, k1=0.08) for c2w in poses])
    est = ColmapEstimator(matcher="sequential", overlap=5, max_num_features=2048)  # video path
    assert est.name == f"pycolmap-{pycolmap_version()}"
    names = [f"f{i}" for i in range(len(frames))]
    times = np.arange(len(frames)) / 10.0
    res = est.estimate(frames, times, names=names)
    assert isinstance(res, SfmResult) and res.estimator == est.name
    assert res.registered.mean() >= 0.9
    idx = np.flatnonzero(res.registered)
    assert res.cameras.names == [names[i] for i in idx]
    np.testing.assert_array_equal(res.cameras.timestamps, np.round(times[idx] * 1e6))
    # pose accuracy after Sim(3) alignment
    est_c2w, gt_c2w = torch.tensor(res.cameras.c2w), torch.tensor(poses[idx])
    extent = np.linalg.norm(np.ptp(poses[:, :3, 3], axis=0))
    ate = ate_rmse(est_c2w, gt_c2w)
    assert ate < 0.01 * extent, (ate, extent)
    s, R, t = umeyama(est_c2w[:, :3, 3], gt_c2w[:, :3, 3])
    rot_err = rotation_error_deg(R @ est_c2w[:, :3, :3], gt_c2w[:, :3, :3])
    assert float(rot_err.max()) < 0.5
    # lens: distortion (up to ~10 px at the corners) was estimated and undistorted away
    assert res.undistorted and res.cameras.distortion is None
    assert res.cameras.meta["max_distortion_px"] > 3.0
    assert res.frames.shape == (len(idx), res.cameras.height, res.cameras.width, 3)
    np.testing.assert_allclose(res.cameras.K[:, 0, 0], F, rtol=0.02)
    # sparse points lie on the walls once aligned
    pts = apply_sim3(torch.tensor(res.points3d), s, R, t).numpy()
    assert len(pts) > 200 and res.point_colors.shape == (len(pts), 3)
    assert np.median(_wall_distance(pts)) < 0.01
    stats = res.stats
    assert stats["registration_ratio"] == pytest.approx(len(idx) / len(frames))
    assert stats["num_registered"] == len(idx) and stats["num_points"] == len(pts)
    assert 0 < stats["mean_reprojection_error_px"] < 1.0
    assert stats["mean_track_length"] > 2.0


@pytest.mark.slow
@pytest.mark.parametrize("k1", [0.0, 0.08])
def test_known_poses_triangulation_and_undistortion(room, k1):
    textures, poses = room
    frames = np.stack([_render(textures, c2w, k1=k1) for c2w in poses[::2]])
    n = len(frames)
    known = CameraSet(
        names=[f"{i}.png" for i in range(n)],
        K=np.repeat(K_TRUE[None], n, 0),
        c2w=poses[::2],
        height=H,
        width=W,
        timestamps=np.arange(n) * 33_333,
        distortion=[{"model": "SIMPLE_RADIAL", "k": k1} if k1 else {} for _ in range(n)],
    )
    est = KnownPosesEstimator(layout="nerfstudio", triangulate=True, max_num_features=2048)
    out = est.estimate(frames, None, known)
    assert out.estimator == "known:nerfstudio" and out.registered.all()
    if k1:  # undistorted to pinhole: new frames and K, same poses
        assert out.undistorted and out.cameras.distortion is None
        assert out.frames.shape == (n, out.cameras.height, out.cameras.width, 3)
        np.testing.assert_allclose(out.cameras.c2w, known.c2w, atol=1e-9)
        np.testing.assert_array_equal(out.cameras.timestamps, known.timestamps)
        np.testing.assert_allclose(out.cameras.K[:, 0, 0], F)
    else:
        assert out.cameras is known and out.frames is None
    assert out.stats["num_points"] > 200 and out.stats["mean_reprojection_error_px"] < 1.0
    assert np.median(_wall_distance(out.points3d)) < 0.01


def test_known_poses_pass_through():
    poses = _arc(4)
    known = CameraSet(
        names=list("abcd"), K=np.repeat(K_TRUE[None], 4, 0), c2w=poses, height=H, width=W
    )
    frames = np.zeros((4, H, W, 3), np.uint8)
    out = KnownPosesEstimator(layout="llff").estimate(frames, None, known)
    assert out.cameras is known and out.registered.all() and out.points3d.shape == (0, 3)
    assert out.stats["registration_ratio"] == 1.0
    assert np.isnan(out.stats["mean_reprojection_error_px"])
    with pytest.raises(SfmError, match="known"):
        KnownPosesEstimator().estimate(frames)
    with pytest.raises(SfmError, match="3 frames but 4"):
        KnownPosesEstimator().estimate(frames[:3], None, known)


def test_sfm_on_textureless_frames_fails_clearly():
    frames = np.full((3, 48, 64, 3), 128, np.uint8)
    with pytest.raises(SfmError, match="registered none of 3 frames"):
        ColmapEstimator().estimate(frames)
    with pytest.raises(SfmError, match="at least 2"):
        ColmapEstimator().estimate(frames[:1])
    with pytest.raises(ValueError, match="matcher"):
        ColmapEstimator(matcher="vocab")
