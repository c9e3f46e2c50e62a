"""Training data: per-sample task transforms, collation, and streaming datamodules.

Per-sample transforms (Clip + numpy Generator + config -> dict of torch tensors), one per task:
``video_sample`` (camera-guided video model), ``lalrm_sample`` (LaLRM), ``frame_sample`` /
``frame_samples`` (WorldFM frame model), ``image_samples`` (image prior). ``ClipDataModule``
streams them from shard sets (local or S3) and batches them with ``collate``.
"""

from .collate import collate
from .datamodules import TASKS, ClipDataModule, ClipStream, datamodule_for
from .frame_task import (
    FrameTaskConfig,
    augment_anchor,
    frame_sample,
    frame_samples,
    reference_for_target,
)
from .image_task import ImageTaskConfig, choose_caption, image_samples
from .lalrm_task import LaLRMTaskConfig, lalrm_sample
from .stream import ShardRef, clip_pipeline, resolve_shards
from .video_task import VideoTaskConfig, video_sample

__all__ = [
    "TASKS",
    "ClipDataModule",
    "ClipStream",
    "FrameTaskConfig",
    "ImageTaskConfig",
    "LaLRMTaskConfig",
    "ShardRef",
    "VideoTaskConfig",
    "augment_anchor",
    "choose_caption",
    "clip_pipeline",
    "collate",
    "datamodule_for",
    "frame_sample",
    "frame_samples",
    "image_samples",
    "lalrm_sample",
    "reference_for_target",
    "resolve_shards",
    "video_sample",
]
