"""The working frames of one input item and the clips planned over them.

`prepare_frames` quality-filters a `FrameSource` (`filter_source`) and keeps at most
`max_frames` evenly spaced survivors: the frames SfM sees once for the whole item. `plan_clips`
samples clip windows over them (WorldFM: 16 = 4 references + 12 targets; Wonderland: seen +
unseen); a clip's positions index the working frames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datagen.camera_formats import CameraSet
from datagen.ingest.errors import IngestError
from datagen.ingest.frame_filters import FilterThresholds, filter_source
from datagen.ingest.frame_source import FrameSource
from datagen.ingest.sampling import sample_wonderland, sample_worldfm

RECIPES = ("worldfm", "wonderland")


def sanitize_id(name: str, fallback: str = "video") -> str:
    """A sample-key-safe id (letters, digits, '_' and '-') from a file or folder name."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")
    return clean or fallback


@dataclass
class VideoFrames:
    """The working frames of one item.

    video_id: key-safe id; frames: uint8 [N, H, W, 3]; timestamps: float64 [N] s;
    frame_ids: [N] source frame indices; cameras: the layout's CameraSet aligned with the frames
    (None for videos and plain folders); layout, license, source (path) of the item;
    meta: filter counts, fps, sizes.
    """

    video_id: str
    frames: np.ndarray
    timestamps: np.ndarray
    frame_ids: list[int]
    cameras: CameraSet | None
    layout: str
    license: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)


def frames_needed(recipe: str, num_frames: int = 16, wonderland_context: int = 49) -> int:
    """Frames one clip of `recipe` needs."""
    return num_frames if recipe == "worldfm" else wonderland_context


def prepare_frames(
    source: FrameSource,
    video_id: str | None = None,
    filters: FilterThresholds | None = None,
    max_frames: int = 96,
    min_frames: int = 2,
) -> VideoFrames:
    """Filter `source` and keep at most `max_frames` evenly spaced frames (decoded).

    Raises IngestError naming the item when fewer than `min_frames` frames pass the filters.
    """
    kept, report = filter_source(source, filters, min_frames=min_frames)
    n = len(kept)
    if n > max_frames:
        pick = np.unique(np.round(np.linspace(0, n - 1, max_frames)).astype(int))
        kept = kept.subset(pick)
    frames = kept.frames
    meta = {
        "num_source_frames": len(source),
        "num_filtered": int(report["num_kept"]),
        "num_working": len(kept),
        "filter_counts": {k: int(v) for k, v in report["counts"].items()},
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
        **{k: source.meta[k] for k in ("fps", "codec", "duration_s") if k in source.meta},
    }
    return VideoFrames(
        video_id=video_id or sanitize_id(source.name),
        frames=frames,
        timestamps=np.asarray(kept.timestamps, np.float64),
        frame_ids=[int(i) for i in kept.meta.get("source_indices", range(len(kept)))],
        cameras=kept.cameras,
        layout=source.layout,
        license=source.license,
        source=str(source.path),
        meta=meta,
    )


@dataclass
class ClipPlan:
    """key; recipe; frames: int [F] positions into the working frames (sorted); ref_idx /
    target_idx: positions into `frames` (WorldFM references / targets, Wonderland seen /
    unseen)."""

    key: str
    recipe: str
    frames: list[int]
    ref_idx: list[int]
    target_idx: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "recipe": self.recipe,
            "frames": self.frames,
            "ref_idx": self.ref_idx,
            "target_idx": self.target_idx,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipPlan:
        return cls(d["key"], d["recipe"], d["frames"], d["ref_idx"], d["target_idx"])


def plan_clips(
    num_available: int,
    rng: np.random.Generator,
    video_id: str,
    recipe: str = "worldfm",
    num_clips: int = 1,
    num_frames: int = 16,
    num_refs: int = 4,
    max_stride: int = 4,
    wonderland_context: int = 49,
    wonderland_unseen: int = 24,
) -> list[ClipPlan]:
    """`num_clips` clips of `recipe` over `num_available` working frames (keys
    `<video_id>-<recipe>-<i:03d>`). Raises IngestError naming `video_id` when too few frames."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {RECIPES}")
    need = frames_needed(recipe, num_frames, wonderland_context)
    if num_available < need:
        raise IngestError(
            video_id,
            f"only {num_available} usable frames after filtering; a {recipe} clip needs {need}",
        )
    plans = []
    for i in range(num_clips):
        if recipe == "worldfm":
            s = sample_worldfm(num_available, rng, num_frames, num_refs, max_stride)
            frames, refs, targets = s.frames, s.refs, s.targets
        else:
            s = sample_wonderland(
                num_available, rng, wonderland_context, None, wonderland_unseen, max_stride
            )
            frames, refs, targets = s.frames, s.seen, s.unseen
        plans.append(
            ClipPlan(
                key=f"{video_id}-{recipe}-{i:03d}",
                recipe=recipe,
                frames=[int(f) for f in frames],
                ref_idx=[int(r) for r in refs],
                target_idx=[int(t) for t in targets],
            )
        )
    return plans
