"""The one Dagster `Definitions` of the platform (`dagster dev -m orchestration.definitions`)."""

import dagster as dg

from assets import (
    frame_assets,
    generation,
    ingest,
    lalrm_assets,
    platform,
    synthetic,
    training_assets,
    worlds_generated,
)
from assets.checkpoint_checks import checkpoint_checks
from orchestration.jobs import JOBS
from orchestration.resources import artifact_store, training_launcher
from orchestration.schedules import SCHEDULES
from orchestration.sensors import SENSORS
from orchestration.sensors_worldgen import WORLDGEN_SENSORS

CHECKPOINT_CHECKS = [
    check
    for asset, model in (
        (training_assets.image_vae, "image_vae"),
        (training_assets.video_vae, "video_vae"),
        (training_assets.camera_video_model, "camera_video_model"),
        (lalrm_assets.lalrm_stage1, "lalrm_stage1"),
        (lalrm_assets.lalrm_stage2, "lalrm_stage2"),
        (frame_assets.frame_model_stage1, "frame_stage1"),
        (frame_assets.frame_model_stage2, "frame_stage2"),
        (frame_assets.frame_model_synthetic_ft, "frame_synthetic_ft"),
        (frame_assets.frame_model_stage3, "frame_stage3"),
    )
    for check in checkpoint_checks(asset, model)
]

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(
        [
            platform,
            synthetic,
            training_assets,
            ingest,
            generation,
            frame_assets,
            lalrm_assets,
            worlds_generated,
        ]
    ),
    asset_checks=CHECKPOINT_CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=[*SENSORS, *WORLDGEN_SENSORS],
    resources={"store": artifact_store, "launcher": training_launcher},
)
