"""Dense depth of a posed clip by plane-sweep MVS (`models.mvs`), with its quality statistics.

The sweep runs unfiltered first, then the cross-view geometric filter with the same neighbours
as `models.mvs.estimate_depths` would use; the fraction of matched (textured) sweep pixels that
survive it with confidence is the clip's static-scene score: moving objects, rolling shutter or
wrong poses make views disagree, so their pixels fail the consistency check. The depth range per view comes from the SfM points seen in it (fallback: the range
over all the clip's points).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from datagen.worlds.ops import torch_threads
from models.mvs import depth_range_from_points, estimate_depths, filter_depths, select_neighbours

DEPTH_ESTIMATOR = "plane-sweep-mvs"


@dataclass(frozen=True)
class MvsParams:
    """Plane-sweep settings (see `models.mvs.estimate_depths`); defaults suit 128–256 px clips.

    cpu_threads: torch intra-op threads while sweeping on the CPU. One by default: on a busy
    2-core machine two OpenMP threads spin-wait on each other (a 128 px clip took 4x longer).
    """

    num_depths: int = 64
    window: int = 7
    num_neighbours: int = 6
    robust: str = "truncated_zncc"
    max_reproj_px: float = 2.0
    max_rel_depth: float = 0.03
    min_views: int = 2
    range_margin: float = 0.15
    chunk: int = 16
    cpu_threads: int | None = 1  # torch threads on CPU (None: leave); see clip_depths

    def to_dict(self) -> dict:
        return asdict(self)


def _fallback_range(points: torch.Tensor, K, c2w, hw) -> tuple[float, float]:
    """(near, far) over every view together: percentiles of all in-view point depths."""
    r = depth_range_from_points(points, K, c2w, hw, percentiles=(2.0, 98.0), min_points=1)
    r = r[torch.isfinite(r).all(-1)]
    if len(r) == 0:
        raise ValueError("no sparse point lies in any view: cannot bound the depth range")
    return float(r[:, 0].min()), float(r[:, 1].max())


def clip_depths(
    rgb: np.ndarray,
    K: np.ndarray,
    c2w: np.ndarray,
    points: np.ndarray,
    params: MvsParams | None = None,
    min_confidence: float = 0.05,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Depth and confidence of every frame, and statistics.

    ``rgb`` uint8 ``[F, H, W, 3]``, ``K`` ``[F, 3, 3]``, ``c2w`` ``[F, 4, 4]`` (any scale),
    ``points`` ``[P, 3]`` sparse points in the same frame. Returns ``depth`` float32 ``[F, H, W]``
    (0 = invalid), ``confidence`` float32 ``[F, H, W]`` in [0, 1] and a dict:
    ``depth_coverage`` (mean over frames of the confident fraction, confident = depth > 0 and
    confidence >= ``min_confidence``), ``min_frame_coverage``, ``static_score`` (confident after
    the consistency filter / every pixel the sweep matched), ``mvs_time_s``.
    """
    params = params or MvsParams()
    threads = params.cpu_threads if torch.device(device).type == "cpu" else None
    with torch_threads(threads):
        return _clip_depths(rgb, K, c2w, points, params, min_confidence, device)


def _clip_depths(rgb, K, c2w, points, params, min_confidence, device):
    t0 = time.perf_counter()
    H, W = rgb.shape[1:3]
    dt = torch.float32
    images = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(0, 3, 1, 2).to(dt)
    images = images / 255.0
    Kt = torch.as_tensor(np.asarray(K), dtype=dt, device=device)
    Ct = torch.as_tensor(np.asarray(c2w), dtype=dt, device=device)
    pts = torch.as_tensor(np.asarray(points), dtype=dt, device=device)
    p = params
    fallback = _fallback_range(pts, Kt, Ct, (H, W))
    raw_d, raw_c = estimate_depths(
        images, Kt, Ct, num_neighbours=p.num_neighbours, depth_range=fallback,
        points_for_range=pts, num_depths=p.num_depths, window=p.window, robust=p.robust,
        chunk=p.chunk, geometric_filter=False, range_margin=p.range_margin,
    )  # fmt: skip
    # the neighbours estimate_depths used: same range rule, same selection
    ranges = depth_range_from_points(pts, Kt, Ct, (H, W), margin=p.range_margin)
    ranges = torch.where(
        torch.isnan(ranges), torch.tensor(fallback, dtype=dt, device=device), ranges
    )
    ranges[:, 0] = ranges[:, 0].clamp_min(1e-6)
    neighbours, _ = select_neighbours(Ct, ranges.prod(-1).sqrt(), p.num_neighbours)
    depth, conf = filter_depths(
        raw_d, raw_c, Kt, Ct, neighbours, p.max_reproj_px, p.max_rel_depth, p.min_views
    )
    before = raw_d > 0  # textured pixels the sweep matched at all
    after = (depth > 0) & (conf >= min_confidence)
    per_frame = after.float().mean(dim=(1, 2))
    n_before = int(before.sum())
    stats = {
        "depth_coverage": float(per_frame.mean()),
        "min_frame_coverage": float(per_frame.min()),
        "static_score": float((after & before).sum()) / n_before if n_before else 0.0,
        "depth_near": float(ranges[:, 0].min()),
        "depth_far": float(ranges[:, 1].max()),
        "mvs_time_s": time.perf_counter() - t0,
    }
    depth = torch.where(after, depth, torch.zeros_like(depth))
    conf = torch.where(after, conf, torch.zeros_like(conf))
    out_d = depth.cpu().numpy().astype(np.float32)
    out_c = conf.clamp(0, 1).cpu().numpy().astype(np.float32)
    if not math.isfinite(stats["static_score"]):
        stats["static_score"] = 0.0
    return out_d, out_c, stats
