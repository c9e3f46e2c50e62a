"""Intermediate ingestion artifacts in the artifact store, one object per stage (and clip), so the
Dagster assets of a video partition run (and re-run) stage by stage.

    ingest/<video>/frames.npz               working frames, timestamps, frame ids, known cameras
    ingest/<video>/frames.json              layout, license, source, filter counts, fps, sizes
    ingest/<video>/plan.json                the planned clips (ClipPlan.to_dict)
    ingest/<video>/poses.npz                PoseTable (+ poses.json: estimator, stats)
    ingest/<video>/clips/<clip>/geometry.npz  scale-normalised clip: rgb, K, c2w, points, ...
    ingest/<video>/clips/<clip>/depth.npz     MVS depth + confidence (float32)
    ingest/<video>/quality.json             one record per planned clip (IngestOutcome.record)
    clips/real/<video>/<clip>.tar           the finished clip (datagen.shards.write_clip_object)

Arrays go through `np.savez_compressed` / `np.load(allow_pickle=False)`; metadata is JSON.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from datagen.camera_formats import CameraSet
from datagen.ingest.plan import ClipPlan, VideoFrames
from datagen.ingest.poses import ClipGeometry, PoseTable
from datagen.store import ArtifactStore

INGEST_PREFIX = "ingest"
CLIPS_PREFIX = "clips/real"
SHARDS_PREFIX = "shards/real"


def video_prefix(video_id: str) -> str:
    return f"{INGEST_PREFIX}/{video_id}"


def clip_prefix(video_id: str, clip_key: str) -> str:
    return f"{INGEST_PREFIX}/{video_id}/clips/{clip_key}"


def put_npz(store: ArtifactStore, key: str, **arrays: np.ndarray) -> int:
    """Compressed npz object; returns its size in bytes."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    store.put_bytes(key, data)
    return len(data)


def get_npz(store: ArtifactStore, key: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(store.get_bytes(key)), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _meta(obj: dict[str, Any]) -> np.ndarray:
    return np.array(json.dumps(obj, sort_keys=True))


def _unmeta(a: np.ndarray) -> dict[str, Any]:
    return json.loads(str(a))


# ------------------------------------------------------------------------------- frames, plan


def save_frames(store: ArtifactStore, vf: VideoFrames) -> int:
    arrays = {"frames": vf.frames, "timestamps": vf.timestamps, "frame_ids": np.array(vf.frame_ids)}
    if vf.cameras is not None:
        c = vf.cameras
        arrays.update(K=c.K, c2w=c.c2w, names=np.array(c.names))
    info = {
        "video_id": vf.video_id,
        "layout": vf.layout,
        "license": vf.license,
        "source": vf.source,
        "meta": vf.meta,
    }
    store.put_json(f"{video_prefix(vf.video_id)}/frames.json", info)
    return put_npz(store, f"{video_prefix(vf.video_id)}/frames.npz", **arrays)


def load_frames(store: ArtifactStore, video_id: str) -> VideoFrames:
    info = store.get_json(f"{video_prefix(video_id)}/frames.json")
    z = get_npz(store, f"{video_prefix(video_id)}/frames.npz")
    cameras = None
    if "K" in z:
        cameras = CameraSet(
            names=[str(n) for n in z["names"]],
            K=z["K"],
            c2w=z["c2w"],
            height=int(z["frames"].shape[1]),
            width=int(z["frames"].shape[2]),
        )
    return VideoFrames(
        video_id=info["video_id"],
        frames=z["frames"],
        timestamps=z["timestamps"],
        frame_ids=[int(i) for i in z["frame_ids"]],
        cameras=cameras,
        layout=info["layout"],
        license=info["license"],
        source=info["source"],
        meta=info["meta"],
    )


def save_plan(store: ArtifactStore, video_id: str, plans: list[ClipPlan]) -> None:
    store.put_json(f"{video_prefix(video_id)}/plan.json", [p.to_dict() for p in plans])


def load_plan(store: ArtifactStore, video_id: str) -> list[ClipPlan]:
    return [ClipPlan.from_dict(d) for d in store.get_json(f"{video_prefix(video_id)}/plan.json")]


# ------------------------------------------------------------------------------------- poses


def save_poses(store: ArtifactStore, video_id: str, poses: PoseTable) -> int:
    arrays = {
        "registered": poses.registered,
        "K": poses.K,
        "c2w": poses.c2w,
        "points": poses.points,
        "point_colors": poses.point_colors,
        "info": _meta({"stats": poses.stats, "estimator": poses.estimator, "meta": poses.meta}),
    }
    if poses.frames is not None:
        arrays["frames"] = poses.frames
    return put_npz(store, f"{video_prefix(video_id)}/poses.npz", **arrays)


def load_poses(store: ArtifactStore, video_id: str) -> PoseTable:
    z = get_npz(store, f"{video_prefix(video_id)}/poses.npz")
    info = _unmeta(z["info"])
    return PoseTable(
        registered=z["registered"].astype(bool),
        K=z["K"],
        c2w=z["c2w"],
        points=z["points"],
        point_colors=z["point_colors"],
        stats=info["stats"],
        estimator=info["estimator"],
        frames=z.get("frames"),
        meta=info["meta"],
    )


# ---------------------------------------------------------------------------- clip geometry


def save_geometry(store: ArtifactStore, geom: ClipGeometry) -> int:
    info = {
        "video_id": geom.video_id,
        "plan": geom.plan.to_dict(),
        "frame_ids": [int(i) for i in geom.frame_ids],
        "scale_factor": geom.scale_factor,
        "quality": geom.quality,
        "pose_estimator": geom.pose_estimator,
        "license": geom.license,
        "layout": geom.layout,
        "source": geom.source,
        "extra": geom.extra,
    }
    return put_npz(
        store,
        f"{clip_prefix(geom.video_id, geom.plan.key)}/geometry.npz",
        rgb=geom.rgb,
        K=geom.K,
        c2w=geom.c2w,
        points=geom.points,
        point_colors=geom.point_colors,
        timestamps=geom.timestamps,
        info=_meta(info),
    )


def load_geometry(store: ArtifactStore, video_id: str, clip_key: str) -> ClipGeometry:
    z = get_npz(store, f"{clip_prefix(video_id, clip_key)}/geometry.npz")
    info = _unmeta(z["info"])
    return ClipGeometry(
        video_id=info["video_id"],
        plan=ClipPlan.from_dict(info["plan"]),
        rgb=z["rgb"],
        K=z["K"],
        c2w=z["c2w"],
        points=z["points"],
        point_colors=z["point_colors"],
        timestamps=z["timestamps"],
        frame_ids=info["frame_ids"],
        scale_factor=info["scale_factor"],
        quality=info["quality"],
        pose_estimator=info["pose_estimator"],
        license=info["license"],
        layout=info["layout"],
        source=info["source"],
        extra=info["extra"],
    )


def save_depth(
    store: ArtifactStore,
    video_id: str,
    clip_key: str,
    depth: np.ndarray,
    conf: np.ndarray,
    info: dict[str, Any] | None = None,
) -> int:
    """Depth + confidence, with `info` (e.g. the MVS settings and gates used) as JSON."""
    key = f"{clip_prefix(video_id, clip_key)}/depth.npz"
    return put_npz(
        store, key, depth=depth.astype(np.float32), conf=conf.astype(np.float32),
        info=_meta(info or {}),
    )  # fmt: skip


def load_depth(
    store: ArtifactStore, video_id: str, clip_key: str
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(depth, conf, info)."""
    z = get_npz(store, f"{clip_prefix(video_id, clip_key)}/depth.npz")
    return z["depth"], z["conf"], _unmeta(z["info"]) if "info" in z else {}


# ------------------------------------------------------------------------------------ quality


def quality_key(video_id: str) -> str:
    return f"{video_prefix(video_id)}/quality.json"


def load_quality(store: ArtifactStore, video_id: str) -> list[dict[str, Any]]:
    key = quality_key(video_id)
    return store.get_json(key)["clips"] if store.exists(key) else []


def save_quality(store: ArtifactStore, video_id: str, records: list[dict[str, Any]]) -> None:
    """Write the records (one per planned clip, plan order) with accepted/rejected counts."""
    accepted = sum(r["status"] == "accepted" for r in records)
    rejected = sum(r["status"] == "rejected" for r in records)
    store.put_json(
        quality_key(video_id),
        {"video_id": video_id, "accepted": accepted, "rejected": rejected, "clips": records},
    )


def update_quality(
    store: ArtifactStore, video_id: str, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Merge `records` (by clip key) into quality.json; quality dicts are merged too."""
    current = {r["key"]: r for r in load_quality(store, video_id)}
    order = list(current)
    for r in records:
        old = current.get(r["key"], {})
        merged = {**old, **r, "quality": {**old.get("quality", {}), **r.get("quality", {})}}
        current[r["key"]] = merged
        if r["key"] not in order:
            order.append(r["key"])
    out = [current[k] for k in order]
    save_quality(store, video_id, out)
    return out
