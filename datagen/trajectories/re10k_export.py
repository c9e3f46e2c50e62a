"""Export sampled cameras as RealEstate10K camera files (via ``datagen.camera_formats``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datagen.camera_formats import CameraSet, write_realestate10k


def camera_set(c2w: np.ndarray, K: np.ndarray, H: int, W: int, fps: float = 30.0, frame_ids=None):
    """``CameraSet`` for poses ``[N, 4, 4]`` and ``K`` ``[3, 3]`` or ``[N, 3, 3]``; timestamps in
    microseconds at ``fps`` from ``frame_ids`` (default 0..N-1)."""
    c2w = np.asarray(c2w, np.float64)
    n = len(c2w)
    K = np.broadcast_to(np.asarray(K, np.float64), (n, 3, 3)).copy()
    ids = np.arange(n) if frame_ids is None else np.asarray(frame_ids)
    stamps = np.round(ids * 1e6 / fps).astype(np.int64)
    return CameraSet([str(s) for s in stamps], K, c2w, int(H), int(W), timestamps=stamps)


def export_realestate10k(
    path: str | Path,
    c2w: np.ndarray,
    K: np.ndarray,
    H: int,
    W: int,
    url: str = "synthetic://wonderforge",
    fps: float = 30.0,
    frame_ids=None,
) -> Path:
    """Write a RealEstate10K camera txt for the path; returns ``path``."""
    cams = camera_set(c2w, K, H, W, fps, frame_ids)
    write_realestate10k(cams, path, url=url)
    return Path(path)
