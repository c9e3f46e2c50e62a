"""Poses for the working frames (once per item), sliced into scale-normalised clip geometry.

`estimate_poses` runs the pose estimator once over all working frames of an item: SfM sees
every frame of the video, which ties the clips of one video into one reconstruction and gives
SfM more views than a 16-frame clip would (better registration and intrinsics). Layouts that
bring cameras use them (`KnownPosesEstimator`, triangulating sparse points for the depth range).

`clip_geometry` slices one clip out of that table, checks the pose gates and normalises the
scale: the median z-depth of the sparse points seen by the clip's frames becomes 1 (fallback:
the camera path extent, then 1). `scale_factor` = source units per normalised unit (metres
per unit when the source poses are metric, SfM's arbitrary unit otherwise). Optionally the clip
is downsized to `max_side` (K scaled with the frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datagen.ingest.images import fit_size, resize
from datagen.ingest.plan import ClipPlan, VideoFrames
from datagen.ingest.quality import QualityGates, pose_gate_reason
from datagen.ingest.sfm import ColmapEstimator, KnownPosesEstimator, PoseEstimator


@dataclass
class PoseTable:
    """Per working frame: registered bool [N], K float64 [N, 3, 3], c2w float64 [N, 4, 4]
    (identity / NaN-free zeros where unregistered); sparse points float64 [P, 3] and colours
    uint8 [P, 3]; stats of the estimator; `frames` uint8 [N, H', W', 3] when the estimator
    undistorted them (unregistered frames zero), else None."""

    registered: np.ndarray
    K: np.ndarray
    c2w: np.ndarray
    points: np.ndarray
    point_colors: np.ndarray
    stats: dict[str, float]
    estimator: str
    frames: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def default_estimator(
    vf: VideoFrames, camera_model: str = "SIMPLE_RADIAL", matcher: str = "auto"
) -> PoseEstimator:
    """Known cameras (with triangulated points) for layouts that bring them, else pycolmap SfM
    with `camera_model` (SIMPLE_PINHOLE for undistorted/rendered footage) and `matcher`."""
    if vf.cameras is not None:
        return KnownPosesEstimator(layout=vf.layout, triangulate=True)
    return ColmapEstimator(matcher=matcher, camera_model=camera_model)


def estimate_poses(vf: VideoFrames, estimator: PoseEstimator | None = None) -> PoseTable:
    """Run `estimator` (default: `default_estimator(vf)`) over all working frames. Raises
    SfmError."""
    est = estimator or default_estimator(vf)
    res = est.estimate(vf.frames, vf.timestamps, known=vf.cameras)
    n = len(vf)
    reg = np.asarray(res.registered, bool)
    idx = np.flatnonzero(reg)
    K = np.zeros((n, 3, 3))
    c2w = np.tile(np.eye(4), (n, 1, 1))
    K[idx], c2w[idx] = res.cameras.K, res.cameras.c2w
    frames = None
    if res.frames is not None:
        frames = np.zeros((n, *res.frames.shape[1:]), np.uint8)
        frames[idx] = res.frames
    return PoseTable(
        registered=reg,
        K=K,
        c2w=c2w,
        points=np.asarray(res.points3d, np.float64).reshape(-1, 3),
        point_colors=np.asarray(res.point_colors, np.uint8).reshape(-1, 3),
        stats={k: float(v) for k, v in res.stats.items()},
        estimator=res.estimator,
        frames=frames,
        meta={"height": int(res.cameras.height), "width": int(res.cameras.width)},
    )


def points_in_view(
    points: np.ndarray, K: np.ndarray, c2w: np.ndarray, hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Which points [P, 3] any view sees, and the z-depths of all (view, point) sightings.

    ``K`` ``[F, 3, 3]``, ``c2w`` ``[F, 4, 4]``. Returns ``seen`` bool ``[P]`` and ``z`` ``[M]``.
    """
    H, W = hw
    w2c = np.linalg.inv(c2w)
    cam = np.einsum("fij,pj->fpi", w2c[:, :3, :3], points) + w2c[:, None, :3, 3]
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.einsum("fij,fpj->fpi", K, cam)[..., :2] / z[..., None]
    inside = (z > 0) & (uv[..., 0] >= 0) & (uv[..., 0] <= W) & (uv[..., 1] >= 0)
    inside &= uv[..., 1] <= H
    return inside.any(0), z[inside]


def normalising_scale(z_seen: np.ndarray, c2w: np.ndarray) -> tuple[float, str]:
    """(scale, basis): median sighting depth, else camera path extent, else 1."""
    if len(z_seen) >= 1 and np.median(z_seen) > 0:
        return float(np.median(z_seen)), "median_point_depth"
    centres = c2w[:, :3, 3]
    extent = float(np.linalg.norm(centres.max(0) - centres.min(0)))
    if extent > 1e-9:
        return extent, "camera_path_extent"
    return 1.0, "none"


@dataclass
class ClipGeometry:
    """One clip with poses: plan, rgb uint8 [F, H, W, 3], K / c2w float64 (normalised scale),
    sparse points [P, 3] seen by the clip (normalised) with colours, timestamps [F], frame_ids [F],
    scale_factor, the pose statistics (`quality`) and where it came from."""

    video_id: str
    plan: ClipPlan
    rgb: np.ndarray
    K: np.ndarray
    c2w: np.ndarray
    points: np.ndarray
    point_colors: np.ndarray
    timestamps: np.ndarray
    frame_ids: list[int]
    scale_factor: float
    quality: dict[str, float]
    pose_estimator: str
    license: str = "unspecified"
    layout: str = "video"
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _resize_clip(rgb: np.ndarray, K: np.ndarray, max_side: int | None):
    h, w = rgb.shape[1:3]
    nh, nw = fit_size(h, w, max_side)
    if (nh, nw) == (h, w):
        return rgb, K
    S = np.diag([nw / w, nh / h, 1.0])
    return np.stack([resize(f, (nh, nw)) for f in rgb]), S @ K


def clip_geometry(
    plan: ClipPlan,
    vf: VideoFrames,
    poses: PoseTable,
    gates: QualityGates | None = None,
    max_side: int | None = None,
) -> tuple[ClipGeometry | None, dict[str, float], str]:
    """Slice `plan` out of `poses` -> (geometry or None, quality stats, rejection reason or '')."""
    gates = gates or QualityGates()
    idx = np.asarray(plan.frames, int)
    reg = poses.registered[idx]
    q: dict[str, float] = {
        "video_registration_ratio": float(poses.registered.mean()),
        "clip_registered_frames": int(reg.sum()),
        "reprojection_error_px": float(poses.stats.get("mean_reprojection_error_px", math.nan)),
        "track_length": float(poses.stats.get("mean_track_length", math.nan)),
        "sfm_points": len(poses.points),
    }
    if not reg.all():
        missing = [vf.frame_ids[i] for i in idx[~reg]]
        shown = ", ".join(map(str, missing[:8])) + (" ..." if len(missing) > 8 else "")
        return None, q, f"{len(missing)} of {len(idx)} clip frames not registered (frames {shown})"
    rgb = (poses.frames if poses.frames is not None else vf.frames)[idx]
    K, c2w = poses.K[idx].copy(), poses.c2w[idx].copy()
    H, W = rgb.shape[1:3]
    seen, z = points_in_view(poses.points, K, c2w, (H, W))
    q["num_points"] = int(seen.sum())
    scale, basis = normalising_scale(z, c2w)
    q["scale_factor"] = scale
    reason = pose_gate_reason(q, gates)
    if reason:
        return None, q, reason
    c2w[:, :3, 3] /= scale
    rgb, K = _resize_clip(rgb, K, max_side)
    geom = ClipGeometry(
        video_id=vf.video_id,
        plan=plan,
        rgb=rgb,
        K=K,
        c2w=c2w,
        points=poses.points[seen] / scale,
        point_colors=poses.point_colors[seen],
        timestamps=vf.timestamps[idx],
        frame_ids=[vf.frame_ids[i] for i in idx],
        scale_factor=scale,
        quality=q,
        pose_estimator=poses.estimator,
        license=vf.license,
        layout=vf.layout,
        source=vf.source,
        extra={"scale_basis": basis, "undistorted": poses.frames is not None},
    )
    return geom, q, ""
