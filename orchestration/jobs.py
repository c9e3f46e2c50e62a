"""Jobs. `wonderforge demo` runs `synthetic_data` for each demo world, then `demo`."""

import dagster as dg

DEMO_GROUPS = ("platform", "training")  # unpartitioned groups only (not "data")

synthetic_data_job = dg.define_asset_job(
    name="synthetic_data",
    selection=dg.AssetSelection.assets("synthetic_worlds", "synthetic_clips", "synthetic_shards"),
    description="One world partition: generate the world, render its clips, write its shards.",
    tags={"wonderforge/kind": "data"},
)

demo_job = dg.define_asset_job(
    name="demo",
    selection=dg.AssetSelection.groups(*DEMO_GROUPS),
    description=(
        "The unpartitioned tail of the end-to-end demo (platform report, then training and "
        "inference as they land); `wonderforge demo` first runs `synthetic_data` per demo world."
    ),
    tags={"wonderforge/kind": "demo"},
)

ingest_video_job = dg.define_asset_job(
    name="ingest_video",
    selection=dg.AssetSelection.assets(
        "raw_videos",
        "video_clips",
        "camera_poses",
        "depth_maps",
        "point_cloud_renders",
        "real_shards",
    ),
    description="One `videos` partition: open the item, filter frames and plan clips, SfM poses, "
    "MVS depth, point-cloud anchors, shards (quality gates recorded per clip).",
    tags={"wonderforge/kind": "data"},
)

generate_videos_job = dg.define_asset_job(
    name="generate_videos",
    selection=dg.AssetSelection.assets("generated_videos", "generated_shards"),
    description="One `generation_batches` partition: sample videos with the latest camera-guided "
    "video model, then write them as the `generated` shard set shards/generated/<batch>/.",
    tags={"wonderforge/kind": "data"},
)

generate_world_job = dg.define_asset_job(
    name="generate_world",
    selection=dg.AssetSelection.assets("generated_worlds"),
    description="One `world_requests` partition: grow a multi-scale world from the request's image "
    "and prompts with the latest published checkpoints.",
    tags={"wonderforge/kind": "inference"},
)

JOBS = [synthetic_data_job, demo_job, ingest_video_job, generate_videos_job, generate_world_job]
