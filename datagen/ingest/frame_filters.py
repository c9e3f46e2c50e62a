"""Per-frame quality filtering: exposure (black, under-, overexposed), blur, near-duplicates.

All statistics use luma (BT.601) on uint8 frames, downsampled by integer block means so that
max(H, W) <= `analysis_side`:
  exposure   black if the 99th percentile <= black_max_p99 (essentially no light at all);
             underexposed if the mean < dark_max_mean; overexposed if more than clip_frac of
             the pixels are >= 250 (blown out)
  blur       variance of the 4-neighbour Laplacian, relative to the median over the frames that
             passed exposure; blur if < blur_rel x median (or < blur_min_abs when set)
  duplicate  mean |difference| (0..255) of 32x32 thumbnails against the last *kept* frame
             <= dup_max_diff, so a static stretch collapses to its first frame
A frame is kept when it has no reason; reasons are listed in the order checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.ingest.errors import IngestError
from datagen.ingest.frame_source import FrameSource

REASONS = ("black", "underexposed", "overexposed", "blur", "duplicate")


@dataclass(frozen=True)
class FilterThresholds:
    black_max_p99: float = 16.0
    dark_max_mean: float = 20.0
    clip_frac: float = 0.5
    blur_rel: float = 0.3
    blur_min_abs: float | None = None
    dup_max_diff: float = 0.75
    thumb_size: int = 32
    analysis_side: int = 640


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _block_mean(img: np.ndarray, fy: int, fx: int) -> np.ndarray:
    h, w = (img.shape[0] // fy) * fy, (img.shape[1] // fx) * fx
    return img[:h, :w].reshape(h // fy, fy, w // fx, fx).mean(axis=(1, 3))


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a float [H, W] image (interior pixels)."""
    lap = (
        4.0 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    )
    return float(lap.var())


def frame_stats(rgb: np.ndarray, th: FilterThresholds = FilterThresholds()) -> dict[str, Any]:
    """Statistics of one uint8 [H, W, 3] frame: mean/p99 luma, clipped fraction, sharpness, thumb."""
    y = _luma(rgb)
    f = max(1, -(-max(y.shape) // th.analysis_side))
    small = _block_mean(y, f, f) if f > 1 else y
    ts = th.thumb_size
    thumb = _block_mean(y, max(1, y.shape[0] // ts), max(1, y.shape[1] // ts))[:ts, :ts]
    return {
        "mean_luma": float(small.mean()),
        "p99_luma": float(np.percentile(small, 99)),
        "clipped_frac": float((small >= 250).mean()),
        "sharpness": laplacian_variance(small),
        "thumb": thumb.astype(np.float32),
    }


def filter_frames(
    frames: np.ndarray | Iterable[np.ndarray], thresholds: FilterThresholds | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Quality-filter uint8 frames [N, H, W, 3] (or an iterable of [H, W, 3]).

    Returns (keep_indices int64 [K] ascending, report) with report keys: "reasons" (list of N
    lists of REASONS), "mean_luma", "p99_luma", "clipped_frac", "sharpness", "dup_diff"
    (float64 [N]; dup_diff is NaN where not compared), "median_sharpness", "counts"
    ({reason: frames}), "num_frames", "num_kept".
    """
    th = thresholds or FilterThresholds()
    stats = [frame_stats(np.asarray(f), th) for f in frames]
    n = len(stats)
    col = {k: np.array([s[k] for s in stats], dtype=np.float64) for k in stats[0]} if n else {}
    reasons: list[list[str]] = [[] for _ in range(n)]
    for i, s in enumerate(stats):
        if s["p99_luma"] <= th.black_max_p99:
            reasons[i].append("black")
        elif s["mean_luma"] < th.dark_max_mean:
            reasons[i].append("underexposed")
        if s["clipped_frac"] > th.clip_frac:
            reasons[i].append("overexposed")
    exposed = [i for i in range(n) if not reasons[i]]
    median = float(np.median([stats[i]["sharpness"] for i in exposed])) if exposed else 0.0
    for i in exposed:
        sharp = stats[i]["sharpness"]
        if sharp < th.blur_rel * median or (
            th.blur_min_abs is not None and sharp < th.blur_min_abs
        ):
            reasons[i].append("blur")
    dup_diff = np.full(n, np.nan)
    last = None
    for i in range(n):
        if reasons[i]:
            continue
        if last is not None:
            dup_diff[i] = float(np.abs(stats[i]["thumb"] - stats[last]["thumb"]).mean())
            if dup_diff[i] <= th.dup_max_diff:
                reasons[i].append("duplicate")
                continue
        last = i
    keep = np.array([i for i in range(n) if not reasons[i]], dtype=np.int64)
    report = {
        "reasons": reasons,
        **{k: col.get(k, np.zeros(0)) for k in ("mean_luma", "p99_luma", "clipped_frac")},
        "sharpness": col.get("sharpness", np.zeros(0)),
        "dup_diff": dup_diff,
        "median_sharpness": median,
        "counts": {r: sum(r in rs for rs in reasons) for r in REASONS},
        "num_frames": n,
        "num_kept": len(keep),
    }
    return keep, report


def require_frames(item: object, report: dict[str, Any], min_frames: int = 2) -> None:
    """IngestError naming `item` when fewer than `min_frames` frames survived filtering."""
    if report["num_kept"] >= min_frames:
        return
    counts = ", ".join(f"{r}: {c}" for r, c in report["counts"].items() if c)
    n = report["num_frames"]
    if n and report["counts"]["black"] == n:
        raise IngestError(item, f"all {n} frames are black")
    raise IngestError(
        item,
        f"only {report['num_kept']} of {n} frames pass the quality filters "
        f"(need {min_frames}; rejected {counts or 'none'})",
    )


def filter_source(
    source: FrameSource, thresholds: FilterThresholds | None = None, min_frames: int = 2
) -> tuple[FrameSource, dict[str, Any]]:
    """Filter a FrameSource frame by frame (lazy sources are decoded one frame at a time).

    Returns (the kept frames as a subset source, report); IngestError naming the source's path
    when fewer than `min_frames` survive (e.g. an all-black video).
    """
    frames = (
        source.frames if source.is_loaded else (source.load([i])[0] for i in range(len(source)))
    )
    keep, report = filter_frames(frames, thresholds)
    require_frames(source.path, report, min_frames)
    return source.subset(keep), report
