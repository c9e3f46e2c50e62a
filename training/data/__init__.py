"""Per-sample transforms (Clip + numpy Generator + config -> dict of torch tensors) and collate.

One transform per training task; the streaming LightningDataModules map them over decoded clips
and batch with ``collate``:

- ``video_sample`` (camera-guided video model), ``lalrm_sample`` (LaLRM),
- ``frame_sample`` / ``frame_samples`` (WorldFM frame model), ``image_samples`` (image prior).
"""

from .collate import collate
from .frame_task import (
    FrameTaskConfig,
    augment_anchor,
    frame_sample,
    frame_samples,
    reference_for_target,
)
from .image_task import ImageTaskConfig, choose_caption, image_samples
from .lalrm_task import LaLRMTaskConfig, lalrm_sample
from .video_task import VideoTaskConfig, video_sample

__all__ = [
    "FrameTaskConfig",
    "ImageTaskConfig",
    "LaLRMTaskConfig",
    "VideoTaskConfig",
    "augment_anchor",
    "choose_caption",
    "collate",
    "frame_sample",
    "frame_samples",
    "image_samples",
    "lalrm_sample",
    "reference_for_target",
    "video_sample",
]
