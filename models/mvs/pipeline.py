"""Dense depth for every frame of a posed clip: view selection, depth range, sweep, filtering.

Input is SfM output (``K``, ``c2w`` and optionally its sparse points), so depths come out in the
poses' scale. Frames loop in Python; everything per pixel is vectorised in ``plane_sweep``.
"""

import math

import torch
from torch import Tensor

from models.geometry import project

from .consistency import filter_depths
from .plane_sweep import plane_sweep_depth


def select_neighbours(
    c2w: Tensor,
    scene_depth: Tensor | float,
    num_neighbours: int = 4,
    target_angle_deg: float = 5.0,
    sigma_low_deg: float = 2.0,
    sigma_high_deg: float = 10.0,
    min_angle_deg: float = 0.5,
    max_view_angle_deg: float = 45.0,
) -> tuple[Tensor, Tensor]:
    """Source views per frame by triangulation-angle score.

    ``c2w`` ``[N, 4, 4]``; ``scene_depth`` scalar or ``[N]`` (typical depth seen by each frame).
    The angle is measured at the point ``scene_depth`` along each frame's optical axis; the score
    is a Gaussian around ``target_angle_deg`` (``sigma_low``/``sigma_high`` below/above). Pairs with
    an angle under ``min_angle_deg`` (near-zero baseline), optical axes more than
    ``max_view_angle_deg`` apart, or the point behind the other camera score 0 and are dropped.
    Returns ``neighbours`` ``[N, M]`` long (best first, ``-1`` = none), ``scores`` ``[N, M]``,
    ``M = min(num_neighbours, N - 1)``.
    """
    N = c2w.shape[0]
    dt = c2w.dtype if c2w.is_floating_point() else torch.float32
    c2w = c2w.to(dt)
    C, z = c2w[:, :3, 3], c2w[:, :3, 2]
    d = torch.as_tensor(scene_depth, dtype=dt, device=c2w.device).expand(N)
    p = C + d[:, None] * z  # [N, 3] point seen by each frame
    to_i = torch.nn.functional.normalize(C - p, dim=-1)[:, None]  # [N, 1, 3]
    to_j = torch.nn.functional.normalize(C[None] - p[:, None], dim=-1)  # [N, N, 3]
    tri = torch.rad2deg(torch.acos((to_i * to_j).sum(-1).clamp(-1, 1)))
    view = torch.rad2deg(torch.acos((z[:, None] * z[None]).sum(-1).clamp(-1, 1)))
    in_front = ((p[:, None] - C[None]) * z[None]).sum(-1) > 0
    sigma = torch.where(tri < target_angle_deg, sigma_low_deg, sigma_high_deg)
    score = torch.exp(-0.5 * ((tri - target_angle_deg) / sigma) ** 2)
    ok = (tri >= min_angle_deg) & (view <= max_view_angle_deg) & in_front
    ok &= ~torch.eye(N, dtype=torch.bool, device=c2w.device)
    score = torch.where(ok, score, torch.zeros_like(score))
    M = min(num_neighbours, N - 1)
    best, idx = torch.topk(score, M, dim=1)
    idx = torch.where(best > 0, idx, torch.full_like(idx, -1))
    return idx, best


def depth_range_from_points(
    points: Tensor,
    K: Tensor,
    c2w: Tensor,
    hw: tuple[int, int],
    percentiles: tuple[float, float] = (1.0, 99.0),
    margin: float = 0.1,
    min_points: int = 8,
) -> Tensor:
    """Per-view ``(near, far)`` ``[N, 2]`` from sparse points ``[P, 3]`` seen in each view.

    Depth percentiles of the points that project inside the ``hw`` image in front of the camera,
    widened by ``margin`` (``near * (1 - margin)``, ``far * (1 + margin)``). Views with fewer than
    ``min_points`` such points get NaN.
    """
    H, W = hw
    dt = c2w.dtype
    uv, z = project(points.to(dt)[None], K.to(dt), c2w)  # [N, P, 2], [N, P]
    inside = (z > 0) & (uv[..., 0] >= 0) & (uv[..., 0] <= W) & (uv[..., 1] >= 0)
    inside &= uv[..., 1] <= H
    zs = torch.where(inside, z, torch.full_like(z, math.nan))
    q = torch.tensor([percentiles[0] / 100, percentiles[1] / 100], dtype=dt, device=z.device)
    lo, hi = torch.nanquantile(zs, q, dim=1)
    ranges = torch.stack([lo * (1 - margin), hi * (1 + margin)], -1)
    enough = inside.sum(1) >= min_points
    return torch.where(enough[:, None], ranges, torch.full_like(ranges, math.nan))


def estimate_depths(
    images: Tensor,
    K: Tensor,
    c2w: Tensor,
    num_neighbours: int = 4,
    depth_range: tuple[float, float] | Tensor | None = None,
    points_for_range: Tensor | None = None,
    num_depths: int = 64,
    window: int = 5,
    robust: str = "truncated_zncc",
    top_k: int | None = None,
    chunk: int = 16,
    geometric_filter: bool = True,
    max_reproj_px: float = 1.0,
    max_rel_depth: float = 0.01,
    min_views: int = 2,
    range_margin: float = 0.1,
) -> tuple[Tensor, Tensor]:
    """Depth and confidence for every frame of a posed image set.

    ``images`` ``[N, 3, H, W]`` in [0, 1], ``K`` ``[N, 3, 3]``, ``c2w`` ``[N, 4, 4]``. The depth
    range per view comes from ``points_for_range`` ``[P, 3]`` (SfM points, see
    ``depth_range_from_points``) and falls back to ``depth_range`` (``(near, far)`` or ``[N, 2]``).
    Each frame is swept against its ``select_neighbours`` sources, then all frames are filtered
    by ``filter_depths`` against the same neighbours (``geometric_filter``).
    Returns ``depth`` ``[N, H, W]`` (z-depth, 0 = invalid) and ``confidence`` ``[N, H, W]``.
    """
    N, _, H, W = images.shape
    dt, dev = images.dtype, images.device
    if N < 2:
        raise ValueError("multi-view stereo needs at least two frames")
    K, c2w = K.to(dt), c2w.to(dt)
    ranges = torch.full((N, 2), math.nan, dtype=dt, device=dev)
    if points_for_range is not None:
        ranges = depth_range_from_points(points_for_range, K, c2w, (H, W), margin=range_margin)
    if depth_range is not None:
        fallback = torch.as_tensor(depth_range, dtype=dt, device=dev).expand(N, 2)
        ranges = torch.where(torch.isnan(ranges), fallback, ranges)
    if torch.isnan(ranges).any():
        raise ValueError("no depth range for some views: pass depth_range or more points")
    ranges[:, 0] = ranges[:, 0].clamp_min(1e-6)

    neighbours, _ = select_neighbours(c2w, ranges.prod(-1).sqrt(), num_neighbours)
    depth = torch.zeros(N, H, W, dtype=dt, device=dev)
    conf = torch.zeros_like(depth)
    for i in range(N):
        src = neighbours[i][neighbours[i] >= 0]
        if src.numel() == 0:
            continue
        near, far = ranges[i].tolist()
        out = plane_sweep_depth(
            images[i], images[src], K[i], c2w[i], K[src], c2w[src], (near, far),
            num_depths=num_depths, window=window, robust=robust, chunk=chunk, top_k=top_k,
        )  # fmt: skip
        depth[i], conf[i] = out["depth"], out["confidence"]
    if geometric_filter:
        depth, conf = filter_depths(
            depth, conf, K, c2w, neighbours, max_reproj_px, max_rel_depth, min_views
        )
    return depth, conf
