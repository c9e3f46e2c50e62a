"""Clip sampling over the kept frames of a source (indices only; no frame data).

WorldFM (§2.4): 16 frames = 4 references + 12 targets; each target's reference is the
temporally closest reference. Here the 16 frames are an evenly strided window (random stride
in [1, max_stride], random start); references sit at evenly spread positions of the 16
(round(linspace(0, 15, 4)) = 0, 5, 10, 15), so every target has a reference at most 2 positions
away; targets are the other 12 positions.

Wonderland (§3.3, App. D): a strided clip of `num_context` frames over a scene range gives the
seen views; unseen views are other frames, drawn half from inside the range (between seen
frames) and half from outside it when available (topping up from the other pool when one is
short).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class WorldFMSample(NamedTuple):
    """frames: int64 [F] sorted source indices; refs/targets: int64 positions into `frames`."""

    frames: np.ndarray
    refs: np.ndarray
    targets: np.ndarray

    @property
    def target_refs(self) -> np.ndarray:
        """int64 [T]: for each target, the position of its temporally closest reference."""
        return nearest_reference(self.frames, self.refs, self.targets)


class WonderlandSample(NamedTuple):
    """frames: int64 [S + U] sorted source indices; seen/unseen: int64 positions into it."""

    frames: np.ndarray
    seen: np.ndarray
    unseen: np.ndarray


def _stride(num_available: int, num_frames: int, rng: np.random.Generator, max_stride: int) -> int:
    fit = (num_available - 1) // max(1, num_frames - 1)
    return int(rng.integers(1, max(1, min(max_stride, fit)) + 1))


def nearest_reference(frames: np.ndarray, refs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Position (into `frames`) of the reference closest in time to each target (ties: earlier)."""
    frames, refs, targets = (np.asarray(a, dtype=np.int64) for a in (frames, refs, targets))
    dist = np.abs(frames[targets][:, None] - frames[refs][None, :])
    return refs[np.argmin(dist, axis=1)]


def sample_worldfm(
    num_available: int,
    rng: np.random.Generator,
    num_frames: int = 16,
    num_refs: int = 4,
    max_stride: int = 4,
) -> WorldFMSample:
    """WorldFM training clip: `num_frames` strided frames, `num_refs` of them references."""
    if not 0 < num_refs < num_frames:
        raise ValueError(f"need 0 < num_refs < num_frames, got {num_refs}, {num_frames}")
    if num_available < num_frames:
        raise ValueError(f"need at least {num_frames} frames, got {num_available}")
    stride = _stride(num_available, num_frames, rng, max_stride)
    start = int(rng.integers(0, num_available - (num_frames - 1) * stride))
    frames = start + stride * np.arange(num_frames, dtype=np.int64)
    refs = np.round(np.linspace(0, num_frames - 1, num_refs)).astype(np.int64)
    targets = np.setdiff1d(np.arange(num_frames, dtype=np.int64), refs)
    return WorldFMSample(frames, refs, targets)


def sample_wonderland(
    num_available: int,
    rng: np.random.Generator,
    num_context: int = 49,
    stride: int | None = None,
    num_unseen: int = 24,
    max_stride: int = 5,
) -> WonderlandSample:
    """Wonderland LaLRM sample: strided seen clip + up to `num_unseen` disjoint unseen frames.

    stride: fixed clip stride, or random in [1, max_stride] (capped to what fits) when None.
    Fewer than `num_unseen` unseen frames are returned only when fewer exist.
    """
    if num_available < num_context:
        raise ValueError(f"need at least {num_context} frames, got {num_available}")
    if stride is None:
        stride = _stride(num_available, num_context, rng, max_stride)
    span = (num_context - 1) * stride
    if span >= num_available:
        raise ValueError(
            f"stride {stride} x {num_context} frames spans {span + 1} > {num_available} frames"
        )
    start = int(rng.integers(0, num_available - span))
    seen = start + stride * np.arange(num_context, dtype=np.int64)
    inside = np.setdiff1d(np.arange(start, start + span + 1), seen)
    outside = np.concatenate([np.arange(0, start), np.arange(start + span + 1, num_available)])
    n_out = min(len(outside), max(num_unseen - len(inside), num_unseen // 2))
    n_in = min(len(inside), num_unseen - n_out)
    n_out = min(len(outside), num_unseen - n_in)
    unseen = np.concatenate(
        [rng.choice(inside, n_in, replace=False), rng.choice(outside, n_out, replace=False)]
    ).astype(np.int64)
    frames = np.sort(np.concatenate([seen, unseen]))
    return WonderlandSample(
        frames, np.searchsorted(frames, seen), np.sort(np.searchsorted(frames, unseen))
    )
