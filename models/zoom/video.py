"""Continuous zoom video from a zoom stack (log-scale interpolation between levels).

A frame at zoom ``z`` (real, in levels: zoom factor ``p^z``) with ``i = ⌊z⌋``, ``f = z − i`` shows
the centre ``1/p^f`` of level ``i``'s view: the rendered level ``R_i = Π_image(L; i)`` is cropped
and bilinearly upsampled by ``p^f``, and level ``i+1`` (which covers the central ``p^(f−1)`` of
the frame) is resampled over it at its higher native resolution — prefiltered with a Gaussian
for the ``p^(1−f)`` reduction, blended at the footprint's edge by pixel coverage. At integer
``z`` the frame is ``R_z`` exactly; as ``f → 1`` it tends to ``R_{i+1}``. Frames are in the stack's
value range; no file I/O here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .stack import render_images


def log_zoom_path(num_levels: int, frames_per_level: int) -> Tensor:
    """Zoom values ``[T]`` uniform in log-scale from 0 to ``N-1`` (``T = (N-1)·fpl + 1``)."""
    return torch.linspace(0, num_levels - 1, (num_levels - 1) * frames_per_level + 1)


def _blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``[B, C, H, W]`` (replicate padding)."""
    if sigma < 0.3:
        return x
    r = max(1, math.ceil(3 * sigma))
    d = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-0.5 * (d / sigma) ** 2)
    g = g / g.sum()
    C = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def _grid(H: int, W: int, scale: float, device, dtype) -> tuple[Tensor, Tensor, Tensor]:
    """Normalised pixel-centre coordinates ``x [W]``, ``y [H]`` and a sampling grid scaled by
    ``scale`` ``[1, H, W, 2]``."""
    x = (torch.arange(W, device=device, dtype=dtype) + 0.5) * 2 / W - 1
    y = (torch.arange(H, device=device, dtype=dtype) + 0.5) * 2 / H - 1
    gy, gx = torch.meshgrid(y * scale, x * scale, indexing="ij")
    return x, y, torch.stack([gx, gy], dim=-1)[None]


def zoom_frame(rendered: Tensor, z: float, p: int) -> Tensor:
    """One frame ``[C, H, W]`` at zoom ``z`` from rendered levels ``[N, C, H, W]``."""
    N, _, H, W = rendered.shape
    z = min(max(float(z), 0.0), N - 1.0)
    i = min(math.floor(z), N - 1)
    f = z - i
    if f == 0.0:
        return rendered[i].clone()
    dev, dt = rendered.device, rendered.dtype
    _, _, grid = _grid(H, W, p ** (-f), dev, dt)
    base = F.grid_sample(rendered[i : i + 1], grid, mode="bilinear", align_corners=False)
    r = p ** (1 - f)  # level i+1 is reduced by r in this frame
    fine = _blur(rendered[i + 1 : i + 2], 0.5 * math.sqrt(max(r * r - 1, 0.0)))
    x, y, grid = _grid(H, W, r, dev, dt)
    over = F.grid_sample(fine, grid, mode="bilinear", align_corners=False, padding_mode="border")
    half = 1.0 / r  # footprint half-width in normalised frame coordinates
    cx = ((half - x.abs()) * W / 2 + 0.5).clamp(0, 1)
    cy = ((half - y.abs()) * H / 2 + 0.5).clamp(0, 1)
    cov = cy[:, None] * cx[None, :]
    return (base * (1 - cov) + over * cov)[0]


def zoom_video(
    layers: Tensor,
    p: int,
    zooms: Tensor | None = None,
    frames_per_level: int = 16,
    sigma: float | None = None,
) -> Tensor:
    """Frames ``[T, C, H, W]`` of a zoom stack ``[N, C, H, W]`` along ``zooms`` ``[T]`` (default
    ``log_zoom_path(N, frames_per_level)``)."""
    rendered = render_images(layers, p, sigma)
    if zooms is None:
        zooms = log_zoom_path(layers.shape[0], frames_per_level)
    return torch.stack([zoom_frame(rendered, float(z), p) for z in zooms])
