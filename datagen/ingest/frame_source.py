"""`FrameSource`: the frames of one input item (video, image folder or dataset layout)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from datagen.camera_formats import CameraSet

SOURCE_LAYOUTS = ("video", "images", "realestate10k", "nerfstudio", "colmap", "llff")


@dataclass
class FrameSource:
    """N frames of one static scene, in temporal (or natural file-name) order.

    name:        id of the item (file stem or folder name)
    path:        the file or folder it came from
    layout:      one of SOURCE_LAYOUTS
    frame_names: [N] str, file names (layouts, folders) or "frame_000123" (video, source index)
    timestamps:  float64 [N] seconds (video: index / fps; RealEstate10K: its microseconds;
                 layouts without times: the frame position, see meta["timestamps"])
    height, width: frame size after any resize
    cameras:     CameraSet (OpenCV c2w, K in pixels of the returned frames), aligned with
                 frame_names, when the layout brings poses; else None
    license:     free-text license note
    meta:        extras (fps, codec, source size, ...)
    Frames are uint8 [N, H, W, 3]: held in memory (video) or decoded on demand through a loader.
    """

    name: str
    path: Path
    layout: str
    frame_names: list[str]
    timestamps: np.ndarray
    height: int
    width: int
    cameras: CameraSet | None = None
    license: str = "unspecified"
    meta: dict[str, Any] = field(default_factory=dict)
    _frames: np.ndarray | None = field(default=None, repr=False)
    _loader: Callable[[int], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        n = len(self.frame_names)
        if self.timestamps.shape != (n,):
            raise ValueError(f"{self.path}: {n} frames but timestamps {self.timestamps.shape}")
        if self.cameras is not None and len(self.cameras) != n:
            raise ValueError(f"{self.path}: {n} frames but {len(self.cameras)} cameras")
        if self._frames is None and self._loader is None:
            raise ValueError(f"{self.path}: FrameSource needs frames or a loader")

    def __len__(self) -> int:
        return len(self.frame_names)

    @property
    def is_loaded(self) -> bool:
        return self._frames is not None

    @property
    def frames(self) -> np.ndarray:
        """uint8 [N, H, W, 3]; decodes (and keeps) all frames on first access."""
        if self._frames is None:
            self._frames = self.load(range(len(self)))
        return self._frames

    def load(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 [k, H, W, 3] for the given frame indices (decoded now unless in memory)."""
        idx = [int(i) for i in indices]
        if self._frames is not None:
            return self._frames[idx]
        out = np.empty((len(idx), self.height, self.width, 3), dtype=np.uint8)
        for j, i in enumerate(idx):
            out[j] = self._loader(i)
        return out

    def subset(self, indices: Sequence[int]) -> FrameSource:
        """A FrameSource holding only `indices` (frames, times, cameras); loading stays lazy.

        meta["source_indices"] maps its frames back to the original item's frames.
        """
        idx = [int(i) for i in indices]
        src = self.meta.get("source_indices", list(range(len(self))))
        cams = None
        if self.cameras is not None:
            c = self.cameras
            cams = replace(
                c,
                names=[c.names[i] for i in idx],
                K=c.K[idx],
                c2w=c.c2w[idx],
                timestamps=None if c.timestamps is None else c.timestamps[idx],
                bounds=None if c.bounds is None else c.bounds[idx],
                distortion=None if c.distortion is None else [c.distortion[i] for i in idx],
                meta=dict(c.meta),
            )
        loader = None
        if self._frames is None:
            parent = self._loader
            loader = lambda j: parent(idx[j])  # noqa: E731
        return replace(
            self,
            frame_names=[self.frame_names[i] for i in idx],
            timestamps=self.timestamps[idx],
            cameras=cams,
            meta={**self.meta, "source_indices": [src[i] for i in idx]},
            _frames=None if self._frames is None else self._frames[idx],
            _loader=loader,
        )
