"""Cross-view geometric consistency of depth maps (forward-backward reprojection check).

A reference pixel with depth ``d`` is lifted to 3D, projected into a neighbour view, the
neighbour's depth is sampled there (bilinear, only where all four taps are valid), lifted again
and projected back into the reference. The pair agrees when the round trip lands within
``max_reproj_px`` of the start pixel and its depth within ``max_rel_depth`` of ``d``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from models.geometry import pixel_grid, project, unproject


def all_neighbours(N: int, device=None) -> Tensor:
    """Every other view as neighbour: ``[N, N - 1]`` long."""
    idx = torch.arange(N, device=device)
    others = idx[None, :].expand(N, N)
    return others[others != idx[:, None]].view(N, N - 1)


def _sample(img: Tensor, uv: Tensor) -> Tensor:
    """Bilinear samples of ``img`` ``[B, H, W]`` at continuous pixel coords ``uv`` ``[B, P, 2]``."""
    H, W = img.shape[-2:]
    grid = torch.stack([2 * uv[..., 0] / W - 1, 2 * uv[..., 1] / H - 1], -1)[:, None]
    out = F.grid_sample(img[:, None], grid, mode="bilinear", align_corners=False)
    return out[:, 0, 0]


def geometric_consistency(
    depths: Tensor,
    K: Tensor,
    c2w: Tensor,
    neighbours: Tensor | None = None,
    max_reproj_px: float = 1.0,
    max_rel_depth: float = 0.01,
    min_views: int = 2,
) -> tuple[Tensor, Tensor]:
    """Forward-backward consistency of ``depths`` ``[N, H, W]`` (z-depth, 0 = invalid).

    ``K`` ``[N, 3, 3]``, ``c2w`` ``[N, 4, 4]``; ``neighbours`` ``[N, M]`` long view indices to
    check against (``-1`` = none; default: all other views). A pixel is kept when at least
    ``min_views`` neighbours agree (``min_views`` is capped by each view's neighbour count).
    Returns ``mask`` ``[N, H, W]`` bool and ``count`` ``[N, H, W]`` long (agreeing neighbours).
    """
    N, H, W = depths.shape
    dt = depths.dtype
    K, c2w = K.to(dt), c2w.to(dt)
    if neighbours is None:
        neighbours = all_neighbours(N, depths.device)
    neighbours = neighbours.to(depths.device)
    M = neighbours.shape[1]
    has = neighbours >= 0  # [N, M]
    nb = neighbours.clamp_min(0)

    pts = unproject(depths, K, c2w).reshape(N, 1, H * W, 3).expand(N, M, H * W, 3)
    uv, z = project(pts, K[nb], c2w[nb])  # [N, M, P, 2], [N, M, P]
    src_d = depths[nb].reshape(N * M, H, W)
    uv_f = torch.nan_to_num(uv, nan=-1e4, posinf=-1e4, neginf=-1e4).reshape(N * M, H * W, 2)
    d_s = _sample(src_d, uv_f).view(N, M, H * W)
    full = _sample((src_d > 0).to(dt), uv_f).view(N, M, H * W) > 1 - 1e-4

    # Lift the sampled source depth at the continuous location, back into the reference.
    K_inv = torch.linalg.inv(K[nb])  # [N, M, 3, 3]
    pix = torch.cat([uv, torch.ones_like(uv[..., :1])], -1)
    p_cam = (K_inv[:, :, None] @ pix[..., None])[..., 0] * d_s[..., None]
    R, t = c2w[nb][:, :, None, :3, :3], c2w[nb][:, :, None, :3, 3]
    world = (R @ p_cam[..., None])[..., 0] + t
    uv_back, z_back = project(world, K[:, None].expand(N, M, 3, 3), c2w[:, None].expand(N, M, 4, 4))

    xy = pixel_grid(H, W, dtype=dt, device=depths.device).reshape(1, 1, H * W, 2)
    d_ref = depths.reshape(N, 1, H * W)
    err_px = (uv_back - xy).norm(dim=-1)
    rel = (z_back - d_ref).abs() / d_ref.clamp_min(1e-12)
    ok = (d_ref > 0) & (z > 0) & full & (d_s > 0) & (z_back > 0) & has[..., None]
    ok &= torch.isfinite(err_px) & (err_px <= max_reproj_px) & (rel <= max_rel_depth)
    count = ok.sum(1).view(N, H, W)
    need = has.sum(1).clamp(min=1, max=min_views)[:, None, None]
    mask = (count >= need) & (depths > 0)
    return mask, count


def filter_depths(
    depths: Tensor,
    confidence: Tensor,
    K: Tensor,
    c2w: Tensor,
    neighbours: Tensor | None = None,
    max_reproj_px: float = 1.0,
    max_rel_depth: float = 0.01,
    min_views: int = 2,
) -> tuple[Tensor, Tensor]:
    """Zero inconsistent pixels; scale confidence by the fraction of agreeing neighbours.

    ``depths``, ``confidence`` ``[N, H, W]``; other arguments as ``geometric_consistency``.
    Returns filtered ``depth`` and ``confidence`` ``[N, H, W]`` (both 0 where rejected).
    """
    N = depths.shape[0]
    if neighbours is None:
        neighbours = all_neighbours(N, depths.device)
    mask, count = geometric_consistency(
        depths, K, c2w, neighbours, max_reproj_px, max_rel_depth, min_views
    )
    m = (neighbours >= 0).sum(1).clamp_min(1).to(depths.device)[:, None, None]
    frac = (count.to(confidence.dtype) / m).clamp(0.0, 1.0)
    zero = torch.zeros_like(depths)
    return torch.where(mask, depths, zero), torch.where(mask, confidence * frac, zero)
