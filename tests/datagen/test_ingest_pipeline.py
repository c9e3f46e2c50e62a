"""Real-video ingestion end to end on rendered procedural scenes with exact depth and poses.

Quality bar (slow tests): pose ATE after Sim(3) alignment < 1 % of the trajectory extent; depth
AbsRel < 0.05 on confident pixels covering >= 60 % of the frame; the point-cloud anchor at each
target agrees with the ground-truth image on covered pixels with PSNR >= 20 dB.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datagen.camera_formats import CameraSet, write_nerfstudio
from datagen.ingest.depth import MvsParams
from datagen.ingest.errors import IngestError
from datagen.ingest.frame_source import FrameSource
from datagen.ingest.images import save_png
from datagen.ingest.pipeline import IngestOptions, ingest_clip, ingest_paths, ingest_source
from datagen.ingest.plan import ClipPlan, VideoFrames, plan_clips
from datagen.ingest.poses import PoseTable, normalising_scale, points_in_view
from datagen.ingest.quality import QualityGates, depth_gate_reason, pose_gate_reason
from datagen.ingest.sfm import ColmapEstimator
from datagen.ingest.staging import (
    load_depth,
    load_frames,
    load_geometry,
    load_plan,
    load_poses,
    load_quality,
    save_depth,
    save_frames,
    save_geometry,
    save_plan,
    save_poses,
    update_quality,
)
from datagen.store import LocalStore
from models.geometry import ate_rmse, umeyama, unproject
from tests.fixtures.ingest_scene import rendered

PSNR_MIN_DB = 20.0  # anchors vs the ground-truth target image, covered pixels


pytestmark = pytest.mark.usefixtures("one_thread_module")


def _video_frames(r: dict, video_id: str = "room") -> VideoFrames:
    n = len(r["rgb"])
    return VideoFrames(
        video_id, r["rgb"], np.arange(n) / 10.0, list(range(n)), None, "video", "test", "mem"
    )


def _gt_poses(r: dict, num_points: int = 400) -> PoseTable:
    """Exact cameras and sparse points sampled from the exact depth: a perfect 'SfM'."""
    n = len(r["depth"])
    K = np.repeat(r["K"][None], n, 0)
    pts = unproject(torch.from_numpy(r["depth"]), torch.from_numpy(K), torch.from_numpy(r["c2w"]))
    pts = pts[torch.from_numpy(r["depth"] > 0)].numpy()
    pick = np.random.default_rng(0).choice(len(pts), num_points, replace=False)
    stats = {"mean_reprojection_error_px": 0.3, "mean_track_length": 5.0, "num_points": 400.0}
    return PoseTable(
        np.ones(n, bool), K, r["c2w"].copy(), pts[pick], np.full((num_points, 3), 128, np.uint8),
        stats, "exact",
    )  # fmt: skip


def _plan(n: int = 16, key: str = "room-worldfm-000") -> ClipPlan:
    return ClipPlan(key, "worldfm", list(range(n)), [0, 5, 10, 15], [1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14])  # fmt: skip


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


# ------------------------------------------------------------------------------ fast tests


def test_plan_clips_worldfm_and_wonderland_and_too_few_frames():
    rng = np.random.default_rng(0)
    plans = plan_clips(40, rng, "vid", "worldfm", num_clips=2)
    assert [p.key for p in plans] == ["vid-worldfm-000", "vid-worldfm-001"]
    for p in plans:
        assert len(p.frames) == 16 and p.ref_idx == [0, 5, 10, 15] and len(p.target_idx) == 12
        assert max(p.frames) < 40 and p.frames == sorted(p.frames)
    (w,) = plan_clips(60, rng, "vid", "wonderland", wonderland_context=13, wonderland_unseen=6)
    assert len(w.ref_idx) == 13 and len(w.target_idx) == 6
    assert not set(w.ref_idx) & set(w.target_idx)
    with pytest.raises(IngestError, match=r"vid: only 10 usable frames.*needs 16"):
        plan_clips(10, rng, "vid")


def test_gate_reasons_name_the_failed_gates():
    gates = QualityGates()
    good = {
        "video_registration_ratio": 1.0,
        "reprojection_error_px": 0.4,
        "track_length": 5.0,
        "num_points": 300,
    }
    assert pose_gate_reason(good, gates) == ""
    bad = {**good, "video_registration_ratio": 0.3, "reprojection_error_px": 2.5}
    reason = pose_gate_reason(bad, gates)
    assert "registered 30%" in reason and "reprojection error 2.50 px > 1.5 px" in reason
    d = {"depth_coverage": 0.7, "min_frame_coverage": 0.5, "static_score": 0.9}
    assert depth_gate_reason(d, gates) == ""
    reason = depth_gate_reason({**d, "depth_coverage": 0.1, "static_score": 0.2}, gates)
    assert "depth coverage 10% < 30%" in reason and "static-scene score 0.20" in reason


def test_scale_normalisation_uses_median_point_depth_then_path_extent():
    K = np.array([[[50.0, 0, 32], [0, 50, 32], [0, 0, 1]]] * 2)
    c2w = np.stack([np.eye(4), np.eye(4)])
    c2w[1, 0, 3] = 0.5
    points = np.array([[0.0, 0, 2.0], [0.1, 0, 4.0], [0, 0, -3.0], [50.0, 0, 2.0]])
    seen, z = points_in_view(points, K, c2w, (64, 64))
    assert seen.tolist() == [True, True, False, False]
    assert normalising_scale(z, c2w) == (pytest.approx(np.median(z)), "median_point_depth")
    assert normalising_scale(np.zeros(0), c2w) == (pytest.approx(0.5), "camera_path_extent")
    assert normalising_scale(np.zeros(0), c2w[:1]) == (1.0, "none")


def test_staging_round_trip(tmp_path):
    store = LocalStore(tmp_path)
    r = rendered(16, 48)
    vf = _video_frames(r)
    vf.cameras = CameraSet([f"{i}.png" for i in range(16)], np.repeat(r["K"][None], 16, 0), r["c2w"], 48, 48)  # fmt: skip
    save_frames(store, vf)
    back = load_frames(store, "room")
    np.testing.assert_array_equal(back.frames, vf.frames)
    np.testing.assert_allclose(back.cameras.c2w, vf.cameras.c2w)
    assert back.frame_ids == vf.frame_ids and back.layout == "video"
    save_plan(store, "room", [_plan()])
    assert load_plan(store, "room") == [_plan()]
    poses = _gt_poses(r)
    save_poses(store, "room", poses)
    pb = load_poses(store, "room")
    np.testing.assert_array_equal(pb.registered, poses.registered)
    np.testing.assert_allclose(pb.points, poses.points)
    assert pb.frames is None and pb.estimator == "exact"
    from datagen.ingest.poses import clip_geometry

    geom, q, reason = clip_geometry(_plan(), vf, poses)
    assert reason == "" and q["num_points"] > 0
    save_geometry(store, geom)
    gb = load_geometry(store, "room", geom.plan.key)
    np.testing.assert_allclose(gb.c2w, geom.c2w)
    assert gb.plan == geom.plan and gb.scale_factor == geom.scale_factor
    save_depth(store, "room", geom.plan.key, r["depth"], np.ones_like(r["depth"]), {"a": 1})
    depth, conf, info = load_depth(store, "room", geom.plan.key)
    np.testing.assert_array_equal(depth, r["depth"])
    assert info == {"a": 1} and conf.dtype == np.float32
    row = {"key": "a", "video_id": "room", "status": "pending", "stage": "poses", "reason": ""}
    update_quality(store, "room", [{**row, "quality": {"x": 1.0}}])
    update_quality(store, "room", [{**row, "status": "rejected", "stage": "depth", "reason": "r", "quality": {"y": 2.0}}])  # fmt: skip
    (rec,) = load_quality(store, "room")
    assert rec["status"] == "rejected" and rec["quality"] == {"x": 1.0, "y": 2.0}
    assert store.get_json("ingest/room/quality.json")["rejected"] == 1


def test_failing_gates_are_recorded_with_their_reason():
    r = rendered(16, 64)
    vf = _video_frames(r)
    poses = _gt_poses(r)
    opts = IngestOptions(mvs=MvsParams(num_depths=32, num_neighbours=4))
    # pose stage: an unregistered frame, then a reprojection error over the gate
    holes = PoseTable(**{**poses.__dict__, "registered": np.arange(16) != 7})
    out = ingest_clip(_plan(), vf, holes, opts, "cpu")
    assert (out.stage, out.accepted, out.clip) == ("poses", False, None)
    assert "1 of 16 clip frames not registered (frames 7)" in out.reason
    noisy = PoseTable(**{**poses.__dict__, "stats": {**poses.stats, "mean_reprojection_error_px": 4.0}})  # fmt: skip
    out = ingest_clip(_plan(), vf, noisy, opts, "cpu")
    assert out.stage == "poses" and "reprojection error 4.00 px" in out.reason
    # depth stage: an unreachable coverage gate
    strict = IngestOptions(**{**opts.__dict__, "gates": QualityGates(min_depth_coverage=0.99)})
    out = ingest_clip(_plan(), vf, poses, strict, "cpu")
    assert out.stage == "depth" and out.reason.startswith("depth coverage")
    assert 0.3 < out.quality["depth_coverage"] < 0.99 and out.quality["static_score"] > 0.4
    rec = out.record()
    assert rec["status"] == "rejected" and rec["stage"] == "depth" and rec["reason"] == out.reason


def test_static_scene_score_drops_when_content_moves():
    r = rendered(16, 64)
    poses = _gt_poses(r)
    opts = IngestOptions(mvs=MvsParams(num_depths=32, num_neighbours=4))
    clean = ingest_clip(_plan(), _video_frames(r), poses, opts, "cpu")
    assert clean.accepted, clean.reason
    moving = r["rgb"].copy()
    patch = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    for i in range(16):  # a textured object sliding across the frame, 2 px per frame
        moving[i, 20:44, 4 + 2 * i : 28 + 2 * i] = patch
    dyn = ingest_clip(_plan(), _video_frames({**r, "rgb": moving}), poses, opts, "cpu")
    assert dyn.quality["static_score"] < clean.quality["static_score"] - 0.05


def _nerfstudio_folder(root, r: dict):
    root.mkdir(parents=True)
    (root / "images").mkdir()
    names = [f"images/frame_{i:03d}.png" for i in range(len(r["rgb"]))]
    for name, rgb in zip(names, r["rgb"]):
        save_png(rgb, root / name)
    n, H, W = r["depth"].shape
    cams = CameraSet(names, np.repeat(r["K"][None], n, 0), r["c2w"], H, W)
    write_nerfstudio(cams, root / "transforms.json")
    return root


def test_batch_reports_bad_items_by_name_and_completes_the_others(tmp_path):
    good = _nerfstudio_folder(tmp_path / "scene", rendered(16, 64))
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))  # header only: truncated
    opts = IngestOptions(mvs=MvsParams(num_depths=32, num_neighbours=4))
    reports = ingest_paths([bad, good], options=opts)
    assert [r.video_id for r in reports] == ["broken", "scene"]
    assert reports[0].error.startswith(f"{bad}:") and not reports[0].outcomes
    assert "truncated" in reports[0].error or "corrupt" in reports[0].error
    (out,) = reports[1].outcomes
    assert reports[1].ok and out.accepted, out.reason
    assert out.clip.provenance.pose_estimator == "known:nerfstudio"


# ------------------------------------------------------------------------------ quality bar


@pytest.mark.slow
def test_sfm_video_path_meets_the_quality_bar():
    """SfM (pycolmap, shared pinhole camera) over 16 frames at 256 px, clip MVS at 128 px."""
    r = rendered(16, 256)
    n = len(r["rgb"])
    source = FrameSource(
        "room", "/mem/room", "images", [f"{i:03d}.png" for i in range(n)], np.arange(n) / 10,
        256, 256, _frames=r["rgb"],
    )  # fmt: skip
    opts = IngestOptions(clip_max_side=128, max_stride=1)
    est = ColmapEstimator(camera_model="SIMPLE_PINHOLE")
    (out,) = ingest_source(source, np.random.default_rng(0), estimator=est, options=opts)
    assert out.accepted, out.reason
    clip = out.clip
    prov = clip.provenance
    assert prov.source_kind == "real_video" and prov.pose_estimator.startswith("pycolmap-")
    assert prov.depth_estimator == "plane-sweep-mvs" and prov.scale_factor > 0
    for key in ("video_registration_ratio", "reprojection_error_px", "track_length"):
        assert key in prov.quality
    for key in ("depth_coverage", "static_score", "scale_factor"):
        assert key in prov.quality
    ids = clip.frame_ids
    gt = rendered(16, 128)  # the same poses rendered at the clip's size
    gt_c2w = torch.from_numpy(gt["c2w"][ids])
    est_c2w = torch.from_numpy(clip.c2w.astype(np.float64))
    extent = float(np.linalg.norm(np.ptp(gt["c2w"][ids, :3, 3], axis=0)))
    ate = ate_rmse(est_c2w, gt_c2w)
    assert ate < 0.01 * extent, (ate, extent)
    # depth: normalised units -> metres through the Sim(3) scale of the camera path
    s = float(umeyama(est_c2w[:, :3, 3], gt_c2w[:, :3, 3])[0])
    depth, gd = clip.depth * s, gt["depth"][ids]
    conf = (clip.depth > 0) & (clip.depth_conf >= QualityGates().min_confidence)
    m = conf & (gd > 0)
    coverage = m.sum() / (gd > 0).sum()
    absrel = float(np.mean(np.abs(depth[m] - gd[m]) / gd[m]))
    assert coverage >= 0.6 and absrel < 0.05, (coverage, absrel)
    psnr = [
        _psnr(clip.pcr_rgb[j][clip.pcr_mask[j]], gt["rgb"][ids[t]][clip.pcr_mask[j]])
        for j, t in enumerate(clip.target_idx)
    ]
    assert min(psnr) >= PSNR_MIN_DB and clip.pcr_mask.mean() > 0.6, (psnr, clip.pcr_mask.mean())
    print(f"ATE {ate / extent:.4f} of extent, coverage {coverage:.3f}, AbsRel {absrel:.4f}, "
          f"PSNR {min(psnr):.2f}-{max(psnr):.2f} dB")  # fmt: skip


@pytest.mark.slow
def test_known_poses_layout_recovers_metric_depth_through_the_scale_factor(tmp_path):
    r = rendered(16, 128)
    folder = _nerfstudio_folder(tmp_path / "ns", r)
    (rep,) = ingest_paths([folder])
    (out,) = rep.outcomes
    assert out.accepted, out.reason
    clip = out.clip
    scale = clip.provenance.scale_factor  # source units (metres here) per normalised unit
    ids = clip.frame_ids
    np.testing.assert_allclose(clip.c2w[:, :3, 3] * scale, r["c2w"][ids, :3, 3], atol=1e-4)
    np.testing.assert_allclose(clip.c2w[:, :3, :3], r["c2w"][ids, :3, :3], atol=1e-6)
    depth, gd = clip.depth * scale, r["depth"][ids]
    m = (clip.depth > 0) & (gd > 0)
    coverage = m.sum() / (gd > 0).sum()
    absrel = float(np.mean(np.abs(depth[m] - gd[m]) / gd[m]))
    assert coverage >= 0.6 and absrel < 0.05, (coverage, absrel)
    assert clip.provenance.extra["scale_units"] == "source poses"
    print(f"known poses: coverage {coverage:.3f}, AbsRel {absrel:.4f}")


@pytest.mark.slow
def test_wonderland_recipe_end_to_end_keeps_seen_and_unseen_frames(tmp_path):
    """A Wonderland clip (strided seen clip + unseen views) through poses, MVS and anchors: the
    seen views are the reference frames, the unseen ones the targets, all with depth."""
    r = rendered(20, 64)
    folder = _nerfstudio_folder(tmp_path / "ns", r)
    opts = IngestOptions(
        recipe="wonderland", wonderland_context=9, wonderland_unseen=4, max_stride=2,
        mvs=MvsParams(num_depths=32, num_neighbours=4),
    )  # fmt: skip
    (rep,) = ingest_paths([folder], options=opts)
    (out,) = rep.outcomes
    assert out.accepted, out.reason
    clip = out.clip
    ids = np.asarray(clip.frame_ids)
    refs, targets = np.asarray(clip.ref_idx), np.asarray(clip.target_idx)
    assert len(refs) == 9 and len(targets) == 4 and len(ids) == 13
    assert not set(refs.tolist()) & set(targets.tolist())
    seen = ids[refs]
    steps = np.diff(seen)
    assert (steps == steps[0]).all() and 1 <= steps[0] <= 2  # one stride over the seen range
    assert clip.depth.shape[0] == 13 and (clip.depth[refs] > 0).mean() > 0.5
    assert clip.pcr_rgb.shape[0] == 4 and clip.pcr_mask.mean() > 0.3
