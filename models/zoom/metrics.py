"""Cross-scale consistency of per-level images."""

from __future__ import annotations

import torch
from torch import Tensor

from .stack import crop_centre, downsample, footprint


def cross_scale_psnr(
    images: Tensor, p: int, data_range: float = 2.0, sigma: float | None = None
) -> Tensor:
    """PSNR (dB) between ``D_1(x_{i+1})`` and the centre footprint of ``x_i``, for images
    ``[..., N, C, H, W]`` -> ``[..., N-1]`` (``inf`` where they agree exactly). ``data_range``:
    2 for images in [-1, 1]."""
    fine = downsample(images[..., 1:, :, :, :], p, sigma)
    coarse = crop_centre(images[..., :-1, :, :, :], p, 1)
    mse = (fine - coarse).double().square().mean(dim=(-3, -2, -1))
    return (10 * torch.log10(data_range**2 / mse)).to(images.dtype)


def seam_ratio(images: Tensor, p: int) -> Tensor:
    """Visibility of the layer boundary in rendered images ``[..., N, C, H, W]`` -> ``[..., N]``:
    mean |step| between the pixel rows/columns that straddle the depth-1 footprint's edge, over
    the mean |step| between neighbouring pixels everywhere (≈ 1: no seam)."""
    H, W = images.shape[-2:]
    (oh, sh), (ow, sw) = footprint(H, p, 1), footprint(W, p, 1)
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs()  # step between rows r, r+1
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs()
    edges = torch.cat(
        [
            dy[..., oh - 1, ow : ow + sw],
            dy[..., oh + sh - 1, ow : ow + sw],
            dx[..., oh : oh + sh, ow - 1],
            dx[..., oh : oh + sh, ow + sw - 1],
        ],
        dim=-1,
    )
    ref = torch.cat([dy.flatten(-2), dx.flatten(-2)], dim=-1).mean(dim=(-2, -1))
    return edges.mean(dim=(-2, -1)) / ref
