"""Z-buffered point-cloud rendering (torch, any device): WorldFM's point-cloud render anchor.

Each point is projected with the shared camera convention (OpenCV, ``c2w``, pixel centres at
``+0.5``) and splatted onto every pixel whose centre lies within ``radius_px`` of its projection
(always at least the pixel it falls in). The nearest point wins each pixel: depth and point index
are packed into one int64 key (``float32`` bits of a positive depth order like the depths) and
reduced with ``scatter_reduce(amin)``, so the result does not depend on point order.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.geometry import project

_EMPTY = torch.iinfo(torch.int64).max


def _offsets(radius_px: float, device) -> Tensor:
    r = max(math.ceil(radius_px), 0)
    d = torch.arange(-r, r + 1, device=device)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    return torch.stack([dx.reshape(-1), dy.reshape(-1)], -1)


def render_points(
    points: Tensor,
    colors: Tensor,
    K: Tensor,
    c2w: Tensor,
    H: int,
    W: int,
    radius_px: float = 1.0,
    near: float = 1e-4,
) -> tuple[Tensor, Tensor, Tensor]:
    """Render ``points`` ``[N, 3]`` with ``colors`` ``[N, 3]`` (in [0, 1]).

    ``K`` ``[3, 3]`` or ``[B, 3, 3]``, ``c2w`` ``[4, 4]`` or ``[B, 4, 4]`` (batched over poses).
    Returns ``rgb`` ``[(B,) 3, H, W]`` (0 where empty), ``mask`` ``[(B,) H, W]`` bool and z-depth
    ``[(B,) H, W]`` (0 where empty). Points closer than ``near`` are dropped.
    """
    batched = c2w.dim() == 3
    c2w_b = c2w if batched else c2w[None]
    B = c2w_b.shape[0]
    K_b = K if K.dim() == 3 else K[None].expand(B, 3, 3)
    dtype = torch.promote_types(points.dtype, torch.float32)
    uv, z = project(points.to(dtype)[None], K_b.to(dtype), c2w_b.to(dtype))
    n = points.shape[0]
    device = points.device
    keep = z > near
    b_idx, p_idx = torch.nonzero(keep, as_tuple=True)
    uv, z = uv[b_idx, p_idx], z[b_idx, p_idx].float()
    key_hi = z.view(torch.int32).to(torch.int64) << 32
    px0 = torch.floor(uv).to(torch.int64)
    offs = _offsets(radius_px, device)
    centre = px0[:, None, :] + offs[None] + 0.5
    dist2 = ((centre - uv[:, None, :]) ** 2).sum(-1)
    cover = (dist2 <= radius_px**2) | (offs == 0).all(-1)[None]
    pix = px0[:, None, :] + offs[None]
    inside = (pix[..., 0] >= 0) & (pix[..., 0] < W) & (pix[..., 1] >= 0) & (pix[..., 1] < H)
    sel = cover & inside
    which, _ = torch.nonzero(sel, as_tuple=True)
    pix = pix[sel]
    flat = b_idx[which] * (H * W) + pix[:, 1] * W + pix[:, 0]
    key = key_hi[which] | p_idx[which]
    zbuf = torch.full((B * H * W,), _EMPTY, dtype=torch.int64, device=device)
    zbuf.scatter_reduce_(0, flat, key, reduce="amin", include_self=True)
    mask = zbuf != _EMPTY
    winner = torch.where(mask, zbuf & 0xFFFFFFFF, torch.zeros_like(zbuf)).clamp(max=max(n - 1, 0))
    depth_bits = torch.where(mask, zbuf >> 32, torch.zeros_like(zbuf)).to(torch.int32)
    depth = depth_bits.view(torch.float32)
    rgb = colors.to(torch.float32)[winner] * mask[:, None]
    rgb = rgb.view(B, H, W, 3).permute(0, 3, 1, 2).contiguous()
    mask, depth = mask.view(B, H, W), depth.view(B, H, W)
    if not batched:
        return rgb[0], mask[0], depth[0]
    return rgb, mask, depth
