"""Dense multi-view stereo (torch only): plane sweep, geometric consistency, per-clip pipeline.

Known poses/intrinsics in (SfM output, OpenCV ``c2w``, ``K`` in pixels); z-depth in the poses'
scale and a confidence in [0, 1] out, on the input tensors' device.
"""

from .consistency import all_neighbours, filter_depths, geometric_consistency
from .pipeline import depth_range_from_points, estimate_depths, select_neighbours
from .plane_sweep import ROBUST_COSTS, depth_hypotheses, plane_sweep_depth, warp_sources

__all__ = [
    "ROBUST_COSTS",
    "all_neighbours",
    "depth_hypotheses",
    "depth_range_from_points",
    "estimate_depths",
    "filter_depths",
    "geometric_consistency",
    "plane_sweep_depth",
    "select_neighbours",
    "warp_sources",
]
