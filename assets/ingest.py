"""Real-video ingestion, one `videos` partition per input item (docs/ingestion.md):

raw_videos -> video_clips -> camera_poses -> depth_maps -> point_cloud_renders -> real_shards

Each asset runs one stage of `datagen.ingest.pipeline` and keeps its output in the artifact store
(`datagen.ingest.staging`), so a partition re-runs stage by stage. Every planned clip has a row
in `ingest/<video>/quality.json`; rejected clips keep their stage and reason there and in the
metadata's quality table.
"""

import tempfile
from pathlib import Path

import dagster as dg
import numpy as np

from assets.automation import CHEAP_DERIVED
from assets.checks import shard_integrity_spec
from assets.partitions import VIDEOS
from assets.shard_sets import ShardSetConfig, publish_clip_objects
from datagen.ingest.assemble import AnchorParams
from datagen.ingest.depth import MvsParams
from datagen.ingest.errors import IngestError
from datagen.ingest.pipeline import IngestOptions, depth_stage, finish_clip
from datagen.ingest.plan import frames_needed, plan_clips, prepare_frames
from datagen.ingest.poses import clip_geometry, estimate_poses
from datagen.ingest.quality import QualityGates, quality_table
from datagen.ingest.registry import fetch_item, registered_item
from datagen.ingest.sfm import ColmapEstimator, KnownPosesEstimator, SfmError
from datagen.ingest.sources import open_source
from datagen.ingest.staging import (
    CLIPS_PREFIX,
    SHARDS_PREFIX,
    load_depth,
    load_frames,
    load_geometry,
    load_plan,
    load_quality,
    save_depth,
    save_frames,
    save_geometry,
    save_plan,
    save_poses,
    save_quality,
    update_quality,
    video_prefix,
)
from datagen.previews import clip_contact_sheet, contact_sheet, depth_to_rgb, png_markdown
from datagen.shards import write_clip_object
from datagen.store import ArtifactStore

POSE_QUALITY = "pose_quality"
DEPTH_COVERAGE = "depth_coverage"


class VideoClipsConfig(dg.Config):
    """Decoding, filtering and clip planning (0 = no limit)."""

    recipe: str = "worldfm"
    num_clips: int = 2
    max_stride: int = 4
    wonderland_context: int = 49
    wonderland_unseen: int = 24
    max_frames: int = 0
    fps: float = 0.0
    max_side: int = 640
    max_sfm_frames: int = 96
    seed: int = 0


class CameraPosesConfig(dg.Config):
    """SfM settings (layouts with cameras use them instead), clip size and the pose gates."""

    camera_model: str = "SIMPLE_RADIAL"
    matcher: str = "auto"
    max_num_features: int = 4096
    clip_max_side: int = 0
    min_registration_ratio: float = QualityGates.min_registration_ratio
    max_reprojection_error_px: float = QualityGates.max_reprojection_error_px
    min_track_length: float = QualityGates.min_track_length
    min_points: int = QualityGates.min_points


class DepthMapsConfig(dg.Config):
    """Plane-sweep settings and the depth gates."""

    num_depths: int = MvsParams.num_depths
    window: int = MvsParams.window
    num_neighbours: int = MvsParams.num_neighbours
    max_reproj_px: float = MvsParams.max_reproj_px
    max_rel_depth: float = MvsParams.max_rel_depth
    device: str = "cpu"
    cpu_threads: int = 1  # torch threads for the sweep on CPU (0: torch's default)
    min_confidence: float = QualityGates.min_confidence
    min_depth_coverage: float = QualityGates.min_depth_coverage
    min_frame_coverage: float = QualityGates.min_frame_coverage
    min_static_score: float = QualityGates.min_static_score


class AnchorsConfig(dg.Config):
    min_confidence: float = AnchorParams.min_confidence
    voxel_px: float = AnchorParams.voxel_px
    max_points: int = AnchorParams.max_points
    radius_px: float = AnchorParams.radius_px
    device: str = "cpu"


def _fail(error: Exception) -> dg.Failure:
    return dg.Failure(description=str(error))


def _table_md(store: ArtifactStore, video_id: str) -> dg.MetadataValue:
    records = load_quality(store, video_id)
    return dg.MetadataValue.md(quality_table(records) if records else "no clips")


def _pending(records: list[dict], stage: str) -> list[str]:
    return [r["key"] for r in records if r["status"] == "pending" and r["stage"] == stage]


def _row(key: str, video_id: str, status: str, stage: str, quality: dict, reason: str = ""):
    return {
        "key": key,
        "video_id": video_id,
        "status": status,
        "stage": stage,
        "reason": reason,
        "quality": quality,
    }


@dg.asset(
    partitions_def=VIDEOS,
    group_name="ingest",
    kinds={"python", "ffmpeg"},
    code_version="1",
    description="A registered input item (video file, image folder or dataset layout) opened and "
    "checked: frame count, fps, size, a preview of its frames.",
)
def raw_videos(
    context: dg.AssetExecutionContext, store: dg.ResourceParam[ArtifactStore]
) -> dg.MaterializeResult:
    video_id = context.partition_key
    try:
        item = registered_item(store, video_id)
        with tempfile.TemporaryDirectory(prefix="raw_") as tmp:
            source = open_source(fetch_item(item, Path(tmp)), max_side=256)
            picks = np.unique(np.linspace(0, len(source) - 1, 6).round().astype(int))
            preview = contact_sheet([list(source.load(picks))], tile_height=72)
    except IngestError as e:
        raise _fail(e) from None
    info = {
        "item": item.__dict__,
        "layout": source.layout,
        "frames": len(source),
        "height": source.height,
        "width": source.width,
        "has_cameras": source.cameras is not None,
        **{k: source.meta[k] for k in ("fps", "codec", "duration_s") if k in source.meta},
    }
    store.put_json(f"{video_prefix(video_id)}/source.json", info)
    return dg.MaterializeResult(
        metadata={
            "uri": dg.MetadataValue.url(item.uri if "://" in item.uri else Path(item.uri).as_uri()),
            "layout": source.layout,
            "frames": len(source),
            "fps": float(source.meta.get("fps", 0.0)),
            "size": f"{source.width}x{source.height} (preview decode, max side 256)",
            "has_cameras": info["has_cameras"],
            "preview": dg.MetadataValue.md(png_markdown(preview, video_id)),
        }
    )


@dg.asset(
    partitions_def=VIDEOS,
    deps=[raw_videos],
    group_name="ingest",
    kinds={"python", "numpy"},
    code_version="1",
    description="Frames decoded and quality-filtered (black, exposure, blur, duplicates), at most "
    "max_sfm_frames kept, and clips planned over them (WorldFM 4 refs + 12 targets or "
    "Wonderland seen + unseen).",
)
def video_clips(
    context: dg.AssetExecutionContext,
    config: VideoClipsConfig,
    store: dg.ResourceParam[ArtifactStore],
) -> dg.MaterializeResult:
    video_id = context.partition_key
    need = frames_needed(config.recipe, 16, config.wonderland_context)
    try:
        item = registered_item(store, video_id)
        with tempfile.TemporaryDirectory(prefix="clips_") as tmp:
            source = open_source(
                fetch_item(item, Path(tmp)),
                max_frames=config.max_frames or None,
                fps=config.fps or None,
                max_side=config.max_side or None,
            )
            vf = prepare_frames(source, video_id, None, config.max_sfm_frames, need)
        rng = np.random.default_rng(config.seed)
        plans = plan_clips(
            len(vf), rng, video_id, config.recipe, config.num_clips, 16, 4, config.max_stride,
            config.wonderland_context, config.wonderland_unseen,
        )  # fmt: skip
    except IngestError as e:
        raise _fail(e) from None
    store.delete_prefix(f"{video_prefix(video_id)}/clips")
    nbytes = save_frames(store, vf)
    save_plan(store, video_id, plans)
    save_quality(store, video_id, [_row(p.key, video_id, "pending", "planned", {}) for p in plans])
    picks = np.unique(np.linspace(0, len(vf) - 1, 8).round().astype(int))
    sheet = contact_sheet([list(vf.frames[picks])], tile_height=72)
    return dg.MaterializeResult(
        metadata={
            "uri": dg.MetadataValue.url(store.uri(f"{video_prefix(video_id)}/frames.npz")),
            "working_frames": len(vf),
            "filtered_out": dg.MetadataValue.json(vf.meta["filter_counts"]),
            "clips_planned": len(plans),
            "recipe": config.recipe,
            "bytes": nbytes,
            "frames": dg.MetadataValue.md(png_markdown(sheet, "working frames")),
        }
    )


@dg.asset(
    partitions_def=VIDEOS,
    deps=[video_clips],
    group_name="ingest",
    kinds={"python", "colmap"},
    code_version="1",
    check_specs=[
        dg.AssetCheckSpec(
            POSE_QUALITY,
            asset="camera_poses",
            description="At least one planned clip passes the pose gates (registration, "
            "reprojection error, track length, sparse points).",
        )
    ],
    description="Camera poses and intrinsics: pycolmap SfM once over the item's working frames "
    "(or the layout's cameras with triangulated points), sliced per clip, scale-normalised "
    "(median point depth = 1) and checked against the pose gates.",
)
def camera_poses(
    context: dg.AssetExecutionContext,
    config: CameraPosesConfig,
    store: dg.ResourceParam[ArtifactStore],
):
    video_id = context.partition_key
    vf, plans = load_frames(store, video_id), load_plan(store, video_id)
    gates = QualityGates(
        min_registration_ratio=config.min_registration_ratio,
        max_reprojection_error_px=config.max_reprojection_error_px,
        min_track_length=config.min_track_length,
        min_points=config.min_points,
    )
    if vf.cameras is not None:
        estimator = KnownPosesEstimator(layout=vf.layout, triangulate=True)
    else:
        estimator = ColmapEstimator(
            matcher=config.matcher,
            camera_model=config.camera_model,
            max_num_features=config.max_num_features,
        )
    store.delete_prefix(f"{video_prefix(video_id)}/clips")
    rows, stats = [], {}
    store.delete(f"{video_prefix(video_id)}/poses.npz")
    try:
        poses = estimate_poses(vf, estimator)
    except SfmError as e:
        rows = [_row(p.key, video_id, "rejected", "poses", {}, f"pose estimation failed: {e}") for p in plans]  # fmt: skip
    else:
        save_poses(store, video_id, poses)
        stats = poses.stats
        for plan in plans:
            try:
                geom, q, reason = clip_geometry(
                    plan, vf, poses, gates, config.clip_max_side or None
                )
            except Exception as e:  # recorded per clip: the other clips go on
                geom, q, reason = None, {}, f"unexpected {type(e).__name__}: {e}"
            if geom is None:
                rows.append(_row(plan.key, video_id, "rejected", "poses", q, reason))
            else:
                save_geometry(store, geom)
                rows.append(_row(plan.key, video_id, "pending", "poses", q))
    records = update_quality(store, video_id, rows)
    passed = [r for r in rows if r["status"] == "pending"]
    table = dg.MetadataValue.md(quality_table(records))
    yield dg.MaterializeResult(
        metadata={
            "uri": dg.MetadataValue.url(store.uri(f"{video_prefix(video_id)}/poses.npz")),
            "estimator": estimator.name,
            "registration_ratio": float(stats.get("registration_ratio", 0.0)),
            "reprojection_error_px": float(stats.get("mean_reprojection_error_px", float("nan"))),
            "sparse_points": int(stats.get("num_points", 0)),
            "sfm_time_s": float(stats.get("time_s", 0.0)),
            "clips_posed": len(passed),
            "clips_rejected": len(rows) - len(passed),
            "quality": table,
        }
    )
    yield dg.AssetCheckResult(
        check_name=POSE_QUALITY,
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "clips_passed": len(passed),
            "clips_rejected": len(rows) - len(passed),
            "registration_ratio": float(stats.get("registration_ratio", 0.0)),
            "reasons": dg.MetadataValue.md(
                "\n".join(f"- {r['key']}: {r['reason']}" for r in rows if r["reason"]) or "none"
            ),
        },
    )


@dg.asset(
    partitions_def=VIDEOS,
    deps=[camera_poses],
    group_name="ingest",
    kinds={"python", "torch"},
    code_version="1",
    check_specs=[
        dg.AssetCheckSpec(
            DEPTH_COVERAGE,
            asset="depth_maps",
            description="At least one clip passes the depth gates (confident-depth coverage, "
            "static-scene score).",
        )
    ],
    description="Dense depth and confidence per clip by plane-sweep MVS (depth range from the "
    "SfM points), geometric-consistency filtered; coverage and static-scene gates.",
)
def depth_maps(
    context: dg.AssetExecutionContext,
    config: DepthMapsConfig,
    store: dg.ResourceParam[ArtifactStore],
):
    video_id = context.partition_key
    options = IngestOptions(
        mvs=MvsParams(
            num_depths=config.num_depths,
            window=config.window,
            num_neighbours=config.num_neighbours,
            max_reproj_px=config.max_reproj_px,
            max_rel_depth=config.max_rel_depth,
            cpu_threads=config.cpu_threads or None,
        ),
        gates=QualityGates(
            min_confidence=config.min_confidence,
            min_depth_coverage=config.min_depth_coverage,
            min_frame_coverage=config.min_frame_coverage,
            min_static_score=config.min_static_score,
        ),
    )
    settings = {"mvs": options.mvs.to_dict(), "gates": options.gates.to_dict()}
    rows, tiles = [], []
    for key in _pending(load_quality(store, video_id), "poses"):
        geom = load_geometry(store, video_id, key)
        try:
            depth, conf, q, reason = depth_stage(geom, options, config.device)
        except Exception as e:  # recorded per clip: the other clips go on
            depth, conf, q, reason = None, None, {}, f"unexpected {type(e).__name__}: {e}"
        if reason:
            rows.append(_row(key, video_id, "rejected", "depth", q, reason))
            continue
        save_depth(store, video_id, key, depth, conf, settings)
        rows.append(_row(key, video_id, "pending", "depth", q))
        if not tiles:
            picks = np.unique(np.linspace(0, len(depth) - 1, 4).round().astype(int))
            tiles = [[geom.rgb[i] for i in picks], [depth_to_rgb(depth[i]) for i in picks]]
        context.log.info(f"{key}: depth coverage {q['depth_coverage']:.0%}")
    records = update_quality(store, video_id, rows)
    passed = [r for r in rows if r["status"] == "pending"]
    coverage = [r["quality"]["depth_coverage"] for r in passed]
    meta = {
        "uri": dg.MetadataValue.url(store.uri(f"{video_prefix(video_id)}/clips")),
        "clips_with_depth": len(passed),
        "clips_rejected": len(rows) - len(passed),
        "mean_depth_coverage": float(np.mean(coverage)) if coverage else 0.0,
        "quality": dg.MetadataValue.md(quality_table(records)),
    }
    if tiles:
        meta["depth"] = dg.MetadataValue.md(png_markdown(contact_sheet(tiles, 72), "depth"))
    yield dg.MaterializeResult(metadata=meta)
    yield dg.AssetCheckResult(
        check_name=DEPTH_COVERAGE,
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "clips_passed": len(passed),
            "clips_checked": len(rows),
            "coverage": dg.MetadataValue.json(
                {r["key"]: r["quality"].get("depth_coverage") for r in rows}
            ),
        },
    )


@dg.asset(
    partitions_def=VIDEOS,
    deps=[depth_maps],
    group_name="ingest",
    kinds={"python", "torch"},
    code_version="1",
    description="WorldFM anchors: the global point cloud of each clip's reference frames "
    "(confident depth, voxel-merged) z-buffer rendered at every target pose (RGB + mask); the "
    "finished clips as store objects.",
)
def point_cloud_renders(
    context: dg.AssetExecutionContext,
    config: AnchorsConfig,
    store: dg.ResourceParam[ArtifactStore],
) -> dg.MaterializeResult:
    video_id = context.partition_key
    options = IngestOptions(
        anchors=AnchorParams(
            min_confidence=config.min_confidence,
            voxel_px=config.voxel_px,
            max_points=config.max_points,
            radius_px=config.radius_px,
        )
    )
    store.delete_prefix(f"{CLIPS_PREFIX}/{video_id}")
    rows, sheet, total = [], None, 0
    records = {r["key"]: r for r in load_quality(store, video_id)}
    for key in _pending(list(records.values()), "depth"):
        geom = load_geometry(store, video_id, key)
        depth, conf, settings = load_depth(store, video_id, key)
        quality = records[key]["quality"]  # pose + depth statistics of the earlier stages
        try:
            out = finish_clip(geom, depth, conf, quality, options, config.device, settings)
        except Exception as e:  # recorded per clip: the other clips go on
            rows.append(_row(key, video_id, "rejected", "anchors", {}, f"unexpected {type(e).__name__}: {e}"))  # fmt: skip
            continue
        if out.clip is None:
            rows.append(_row(key, video_id, "rejected", out.stage, out.quality, out.reason))
            continue
        total += write_clip_object(store, f"{CLIPS_PREFIX}/{video_id}/{key}.tar", out.clip)
        rows.append(_row(key, video_id, "accepted", "accepted", out.quality))
        if sheet is None:
            sheet = clip_contact_sheet(out.clip)
    records = update_quality(store, video_id, rows)
    meta = {
        "uri": dg.MetadataValue.url(store.uri(f"{CLIPS_PREFIX}/{video_id}")),
        "clips_accepted": sum(r["status"] == "accepted" for r in records),
        "clips_rejected": sum(r["status"] == "rejected" for r in records),
        "bytes": total,
        "quality": dg.MetadataValue.md(quality_table(records)),
        "quality_uri": dg.MetadataValue.url(store.uri(f"{video_prefix(video_id)}/quality.json")),
    }
    if sheet is not None:
        meta["preview"] = dg.MetadataValue.md(png_markdown(sheet, "frames / depth / anchors"))
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    automation_condition=CHEAP_DERIVED,
    partitions_def=VIDEOS,
    deps=[point_cloud_renders],
    group_name="ingest",
    kinds={"webdataset"},
    code_version="1",
    check_specs=[shard_integrity_spec("real_shards")],
    description="The item's accepted clips packed into a webdataset shard set (schema v1) with a "
    "manifest; replaced atomically on re-materialization.",
)
def real_shards(
    context: dg.AssetExecutionContext,
    config: ShardSetConfig,
    store: dg.ResourceParam[ArtifactStore],
):
    video_id = context.partition_key
    keys = [k for k in store.list(f"{CLIPS_PREFIX}/{video_id}") if k.endswith(".tar")]
    if not keys:
        rejected = [r for r in load_quality(store, video_id) if r["status"] == "rejected"]
        why = "; ".join(f"{r['key']} ({r['stage']}): {r['reason']}" for r in rejected[:5])
        raise dg.Failure(
            description=f"{video_id}: no accepted clips to shard ({why or 'none planned'}); "
            f"see {store.uri(f'{video_prefix(video_id)}/quality.json')}"
        )
    yield from publish_clip_objects(
        store,
        keys,
        f"{SHARDS_PREFIX}/{video_id}",
        "real",
        video_id,
        config,
        {"quality": _table_md(store, video_id)},
    )


INGEST_ASSETS = (
    "raw_videos",
    "video_clips",
    "camera_poses",
    "depth_maps",
    "point_cloud_renders",
    "real_shards",
)
