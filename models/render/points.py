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

from models.geometry import invert_se3

_EMPTY = torch.iinfo(torch.int64).max


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
    n, device = points.shape[0], points.device
    # one [N, 4] @ [4, 3] product per pose (same maths as models.geometry.project, which would
    # run N tiny 3x3 products): columns are u*z, v*z, z
    P = K_b.to(dtype) @ invert_se3(c2w_b.to(dtype))[:, :3, :]
    ones = torch.ones(n, 1, dtype=dtype, device=device)
    uvz = torch.cat([points.to(dtype), ones], 1)[None] @ P.transpose(1, 2)
    z = uvz[..., 2]
    r = max(math.ceil(radius_px), 0)
    inv_z = 1.0 / torch.where(z > near, z, torch.ones_like(z))
    u, v = uvz[..., 0] * inv_z, uvz[..., 1] * inv_z
    keep = (z > near) & (u > -r) & (u < W + r) & (v > -r) & (v < H + r)
    b_idx, p_idx = torch.nonzero(keep, as_tuple=True)
    u, v, z = u[b_idx, p_idx], v[b_idx, p_idx], z[b_idx, p_idx].float()
    key = (z.view(torch.int32).to(torch.int64) << 32) | p_idx
    px0, py0 = torch.floor(u), torch.floor(v)
    fx, fy = u - px0 - 0.5, v - py0 - 0.5  # the point relative to its pixel's centre
    px0, py0 = px0.to(torch.int64), py0.to(torch.int64)
    centre = b_idx * (H * W) + py0 * W + px0
    dump = B * H * W  # out-of-image and uncovered splats land here
    zbuf = torch.full((dump + 1,), _EMPTY, dtype=torch.int64, device=device)
    steps = range(-r, r + 1)
    dist_x = {d: (d - fx) ** 2 for d in steps}  # squared distances to neighbouring centres
    dist_y = {d: (d - fy) ** 2 for d in steps}
    in_x = {d: (px0 + d >= 0) & (px0 + d < W) for d in steps}
    in_y = {d: (py0 + d >= 0) & (py0 + d < H) for d in steps}
    for dy in steps:
        for dx in steps:
            ok = in_x[dx] & in_y[dy]
            if (dx, dy) != (0, 0):
                ok &= dist_x[dx] + dist_y[dy] <= radius_px**2
            flat = torch.where(ok, centre + (dy * W + dx), dump)
            zbuf.scatter_reduce_(0, flat, key, reduce="amin", include_self=True)
    zbuf = zbuf[:dump]
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
