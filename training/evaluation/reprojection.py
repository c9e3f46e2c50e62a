"""Multi-view consistency of frames along a camera path, by reprojection with ground-truth geometry.

The measure (``reprojection_psnr``): for consecutive path frames t and t+1, every pixel of view t
with valid ground-truth depth is unprojected (GT depth of t, GT pose of t), projected into view
t+1 (GT pose), and frame t+1 is sampled there (bilinear). PSNR between frame t and this warped
frame t+1 is taken over the co-visible pixels: inside frame t+1, in front of its camera, and not
occluded there — the projected depth agrees with the GT depth of t+1 (nearest pixel) within a
relative ``tolerance``. Applied to generated frames it measures whether consecutive generations
agree where they see the same surface; applied to the ground-truth frames it gives the ceiling
(what lighting, resampling and depth errors leave).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.geometry import project, unproject

MIN_VALID_FRACTION = 0.01


def reproject(
    source: Tensor,
    depth: Tensor,
    K: Tensor,
    c2w: Tensor,
    source_K: Tensor,
    source_c2w: Tensor,
    source_depth: Tensor | None = None,
    tolerance: float = 0.05,
) -> tuple[Tensor, Tensor]:
    """Warp ``source`` images ``[B, 3, H, W]`` (seen from ``source_K [B, 3, 3]``,
    ``source_c2w [B, 4, 4]``) into the destination views with z-depth ``depth [B, H, W]``
    (0 = invalid), ``K``, ``c2w``.

    Returns ``(warped [B, 3, H, W], valid [B, H, W] bool)``: valid where the destination depth
    is positive, the point lies in front of the source camera and inside its image, and (given
    ``source_depth [B, H, W]``) it is not occluded in the source view."""
    B, _, H, W = source.shape
    points = unproject(depth.float(), K.float(), c2w.float()).reshape(B, H * W, 3)
    uv, z = project(points, source_K.float(), source_c2w.float())
    x, y = uv[..., 0], uv[..., 1]
    valid = (depth.reshape(B, -1) > 0) & (z > 1e-6)
    valid &= (x >= 0) & (x <= W) & (y >= 0) & (y <= H)
    grid = torch.stack([2 * x / W - 1, 2 * y / H - 1], -1).nan_to_num(0.0, 2.0, -2.0)
    grid = grid.view(B, H, W, 2).to(source.dtype)
    warped = F.grid_sample(source, grid, "bilinear", "border", align_corners=False)
    if source_depth is not None:
        seen = F.grid_sample(source_depth[:, None].float(), grid.float(), "nearest", "zeros", False)
        seen = seen.reshape(B, -1)
        valid &= (seen > 0) & ((z - seen).abs() <= tolerance * z)
    return warped, valid.view(B, H, W)


def masked_psnr(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    """PSNR (dB, peak 1) ``[B]`` of images ``[B, 3, H, W]`` over ``mask [B, H, W]``; NaN where the
    mask is empty."""
    m = mask[:, None].to(a.dtype)
    count = m.sum((1, 2, 3)) * a.shape[1]
    mse = ((a - b).pow(2) * m).sum((1, 2, 3)) / count.clamp_min(1)
    psnr = -10 * torch.log10(mse.clamp_min(1e-10))
    return torch.where(count > 0, psnr, torch.full_like(psnr, float("nan")))


def reprojection_psnr(
    frames: Tensor,
    depth: Tensor,
    K: Tensor,
    c2w: Tensor,
    tolerance: float = 0.05,
    min_valid: float = MIN_VALID_FRACTION,
    masks: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Consistency of a path: ``frames [T, 3, H, W]`` in [0, 1] at ``K [T, 3, 3]``,
    ``c2w [T, 4, 4]`` with ground-truth z-depth ``depth [T, H, W]``; ``masks [T, H, W]``: where
    each frame has content (e.g. a point-cloud render's coverage; None: everywhere) — only pixels
    covered in frame t and (warped) in frame t+1 count.

    Returns ``(psnr [T-1], valid_fraction [T-1])`` for the pairs (t, t+1) (module docstring);
    the PSNR is NaN where fewer than ``min_valid`` of the pixels are co-visible."""
    if frames.shape[0] < 2:
        empty = frames.new_zeros(0)
        return empty, empty
    source = frames[1:] if masks is None else torch.cat([frames[1:], masks[1:, None].to(frames)], 1)
    warped, valid = reproject(
        source, depth[:-1], K[:-1], c2w[:-1], K[1:], c2w[1:], depth[1:], tolerance
    )
    if masks is not None:
        valid &= masks[:-1].bool() & (warped[:, 3] > 0.5)
        warped = warped[:, :3]
    fraction = valid.float().mean((1, 2))
    psnr = masked_psnr(frames[:-1].float(), warped.float(), valid)
    psnr = torch.where(fraction >= min_valid, psnr, torch.full_like(psnr, float("nan")))
    return psnr, fraction
