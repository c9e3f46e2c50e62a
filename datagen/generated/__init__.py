"""Generated out-of-domain videos (Wonderland §3.3, D.2), the data of LaLRM's second stage:
conditioning images + RealEstate10K-like camera paths -> the camera-guided video model (a
callable the caller supplies) -> clips with decoded frames, latents and conditioning poses ->
``generated`` shard sets under ``shards/generated/<batch>/``."""

from datagen.generated.conditioning import (
    RE10K_TEMPLATE_WEIGHTS,
    Conditioning,
    choose_template,
    crop_resize,
    fov_intrinsics,
    free_camera_path,
    image_conditionings,
    load_image_ref,
    world_conditionings,
)
from datagen.generated.videos import (
    CLIPS_PREFIX,
    DATASET,
    SHARDS_PREFIX,
    VIDEOS_PREFIX,
    GeneratedRecord,
    VideoGenerator,
    check_batch,
    clip_object_keys,
    clips_prefix,
    generate_batch,
    generated_clip,
    generated_preview,
    relative_path,
    shards_prefix,
    videos_prefix,
    write_generated_shards,
    write_generated_video,
)

__all__ = [
    "CLIPS_PREFIX",
    "DATASET",
    "RE10K_TEMPLATE_WEIGHTS",
    "SHARDS_PREFIX",
    "VIDEOS_PREFIX",
    "Conditioning",
    "GeneratedRecord",
    "VideoGenerator",
    "check_batch",
    "choose_template",
    "clip_object_keys",
    "clips_prefix",
    "crop_resize",
    "fov_intrinsics",
    "free_camera_path",
    "generate_batch",
    "generated_clip",
    "generated_preview",
    "image_conditionings",
    "load_image_ref",
    "relative_path",
    "shards_prefix",
    "videos_prefix",
    "world_conditionings",
    "write_generated_shards",
    "write_generated_video",
]
