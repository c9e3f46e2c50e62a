"""The last ingestion stage: anchors at the targets, provenance, a validated `Clip`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.anchors import global_point_cloud, render_anchors
from datagen.clips import Clip, Provenance
from datagen.ingest.depth import DEPTH_ESTIMATOR
from datagen.ingest.poses import ClipGeometry


@dataclass(frozen=True)
class AnchorParams:
    """Global point cloud of the references (confidence >= min_confidence, voxel merging at
    voxel_px pixels of the median depth, at most max_points) splatted with radius_px."""

    min_confidence: float = 0.05
    voxel_px: float = 1.0
    max_points: int = 600_000
    radius_px: float = 1.0


def clip_anchors(
    geom: ClipGeometry,
    depth: np.ndarray,
    conf: np.ndarray,
    params: AnchorParams = AnchorParams(),
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, int]:
    """Point-cloud renders at the clip's targets from its references.

    Returns ``pcr_rgb`` uint8 ``[T, H, W, 3]``, ``pcr_mask`` bool ``[T, H, W]`` and the number of
    points.
    """
    ref, tgt = geom.plan.ref_idx, geom.plan.target_idx
    pts, cols = global_point_cloud(
        geom.rgb[ref], depth[ref], geom.K[ref], geom.c2w[ref], conf[ref],
        min_confidence=params.min_confidence, voxel_px=params.voxel_px,
        max_points=params.max_points,
    )  # fmt: skip
    H, W = geom.rgb.shape[1:3]
    pcr_rgb, pcr_mask = render_anchors(
        pts, cols, geom.K[tgt], geom.c2w[tgt], H, W, params.radius_px, device
    )
    return pcr_rgb, pcr_mask, len(pts)


def assemble_clip(
    geom: ClipGeometry,
    depth: np.ndarray,
    conf: np.ndarray,
    pcr_rgb: np.ndarray,
    pcr_mask: np.ndarray,
    quality: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> Clip:
    """A validated real-video `Clip` (raises ClipValidationError naming the problem)."""
    provenance = Provenance(
        source_kind="real_video",
        scene_id=geom.video_id,
        video_id=geom.video_id,
        license=geom.license,
        pose_estimator=geom.pose_estimator,
        depth_estimator=DEPTH_ESTIMATOR,
        quality={k: float(v) for k, v in quality.items()},
        scale_factor=float(geom.scale_factor),
        extra={
            "recipe": geom.plan.recipe,
            "layout": geom.layout,
            "source": geom.source,
            "scale_units": "source poses" if geom.pose_estimator.startswith("known:") else "sfm",
            **geom.extra,
            **(extra or {}),
        },
    )
    clip = Clip(
        key=geom.plan.key,
        rgb=np.ascontiguousarray(geom.rgb),
        K=geom.K.astype(np.float32),
        c2w=geom.c2w.astype(np.float32),
        depth=depth.astype(np.float32),
        depth_conf=conf.astype(np.float32),
        provenance=provenance,
        ref_idx=list(geom.plan.ref_idx),
        target_idx=list(geom.plan.target_idx),
        pcr_rgb=pcr_rgb,
        pcr_mask=pcr_mask,
        timestamps=np.asarray(geom.timestamps, np.float64),
        frame_ids=[int(i) for i in geom.frame_ids],
    )
    return clip.validate()
