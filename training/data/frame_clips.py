"""Frame-task samples read straight from published shard sets, in a fixed order (no streaming,
no shuffling buffer): the conditions of the teacher pairs, the frame-model previews and the
evaluation all need a reproducible, finite selection of (clip, target) triplets.

``CLEAN_ANCHORS`` is the frame task without anchor augmentation: the point-cloud render exactly
as stored, never masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from datagen.clips.clip import Clip
from datagen.shards import read_clips
from datagen.store import ArtifactStore

from .collate import collate
from .frame_task import FrameTaskConfig, frame_sample

CLEAN_ANCHORS = FrameTaskConfig(
    shuffle_prob=0.0, dropout_prob=0.0, block_mask_prob=0.0, anchor_mask_prob=0.0
)
FRAME_FIELDS = {"pcr"}


def iter_set_clips(
    store: ArtifactStore, prefixes: Iterable[str], max_clips: int | None = None
) -> Iterator[tuple[str, Clip]]:
    """``(set prefix, clip)`` of the shard sets under ``prefixes``, in manifest order, with their
    point-cloud renders decoded; at most ``max_clips`` clips in all."""
    count = 0
    for prefix in prefixes:
        for clip in read_clips(store, prefix, fields=set(FRAME_FIELDS)):
            if max_clips is not None and count >= max_clips:
                return
            count += 1
            yield prefix, clip


def target_positions(
    clip: Clip, rng: np.random.Generator, per_clip: int | None, consecutive: bool = False
) -> list[int]:
    """Positions in ``clip.target_idx`` to use: all (``per_clip`` None or ≥ the count), else
    ``per_clip`` of them — random distinct ones in increasing order, or the first ``per_clip``
    when ``consecutive`` (a piece of the camera path)."""
    n = len(clip.target_idx)
    if per_clip is None or per_clip >= n:
        return list(range(n))
    if per_clip < 1:
        raise ValueError(f"targets per clip must be >= 1, got {per_clip}")
    if consecutive:
        return list(range(per_clip))
    return sorted(int(i) for i in rng.choice(n, size=per_clip, replace=False))


def frame_triplets(
    clips: Iterable[tuple[str, Clip]],
    task: FrameTaskConfig = CLEAN_ANCHORS,
    seed: int = 0,
    per_clip: int | None = None,
    limit: int | None = None,
    consecutive: bool = False,
) -> Iterator[dict]:
    """Frame-task samples (``frame_sample`` dicts plus ``"set"``: the clip's set prefix) for the
    chosen targets of every clip (``target_positions``), at most ``limit`` in all; one numpy
    ``Generator(seed)`` drives target choice and anchor augmentation, so the selection is a
    function of the inputs.

    Raises ValueError naming the clip when its frame size differs from the first clip's (the
    samples are batched together)."""
    rng = np.random.default_rng(seed)
    size = None
    count = 0
    for prefix, clip in clips:
        if size is None:
            size = clip.rgb.shape[1:3]
        elif clip.rgb.shape[1:3] != size:
            raise ValueError(
                f"clip {clip.key!r} of shard set {prefix!r} is {clip.rgb.shape[2]}x"
                f"{clip.rgb.shape[1]} but earlier clips are {size[1]}x{size[0]}: frame-model "
                "samples are batched, so choose shard sets of one frame size"
            )
        for pos in target_positions(clip, rng, per_clip, consecutive):
            if limit is not None and count >= limit:
                return
            count += 1
            yield {**frame_sample(clip, rng, task, pos), "set": prefix}


def batches(samples: Iterable[dict], batch_size: int) -> Iterator[dict]:
    """Collated batches of ``batch_size`` samples (the last may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chunk: list[dict] = []
    for sample in samples:
        chunk.append(sample)
        if len(chunk) == batch_size:
            yield collate(chunk)
            chunk = []
    if chunk:
        yield collate(chunk)
