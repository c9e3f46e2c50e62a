"""A perceptual-style image loss built from fixed filters only (no pretrained network, no
torchvision): pure torch, differentiable, 0 for identical images.

``PyramidPerceptualLoss(pred, target)`` for images ``[N, 3, H, W]`` in [0, 1] is the weighted sum of

- a multi-scale structural term: ``mean_s (1 - SSIM_s)``, SSIM (Wang et al. 2004; Gaussian window
  σ = 1.5, data range 1) at every level ``s`` of a Gaussian pyramid, all levels weighted equally
  (an arithmetic-mean relative of MS-SSIM that stays well defined when SSIM is negative);
- a Laplacian-pyramid L1 term (the "Lap1" loss of Bojanowski et al. 2018): mean absolute
  difference of every band-pass level and of the low-pass residual, bands weighted equally;
- an edge term: L1 between horizontal and vertical finite-difference gradients.

Blur, lost texture and shifted edges raise all three; a uniform colour offset touches only SSIM's
luminance factor and the low-pass residual, which the L1 reconstruction loss covers anyway.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # Burt & Adelson's 5-tap pyramid kernel
_SSIM_C1, _SSIM_C2 = 0.01**2, 0.03**2


def gaussian_kernel1d(sigma: float, dtype=torch.float32, device=None) -> Tensor:
    """Normalised 1D Gaussian ``[2r + 1]`` with ``r = ceil(3 σ)``."""
    radius = max(1, math.ceil(3.0 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def separable_filter(x: Tensor, kernel: Tensor) -> Tensor:
    """Depthwise separable filtering of ``x [N, C, H, W]`` with ``kernel [k]`` (reflect padding;
    replicate where the image is too small to reflect). Same size out."""
    channels, radius = x.shape[1], kernel.numel() // 2
    mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    kernel = kernel.to(dtype=x.dtype, device=x.device)
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=mode), horizontal, groups=channels)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode=mode), vertical, groups=channels)


def pyramid_levels(height: int, width: int, levels: int, min_size: int = 8) -> int:
    """``levels`` capped so that the coarsest level keeps at least ``min_size`` pixels a side."""
    fit = math.floor(math.log2(max(1, min(height, width)) / min_size)) + 1
    return max(1, min(levels, fit))


def gaussian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``levels`` images ``[N, C, H / 2^s, W / 2^s]``: binomial blur, then ×2 decimation."""
    kernel = torch.tensor(_BINOMIAL) / 16.0
    pyramid = [x]
    for _ in range(levels - 1):
        pyramid.append(separable_filter(pyramid[-1], kernel)[..., ::2, ::2])
    return pyramid


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``levels - 1`` band-pass images ``G_s - up(G_{s+1})`` and the low-pass residual."""
    gauss = gaussian_pyramid(x, levels)
    bands = [
        fine - F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        for fine, coarse in itertools.pairwise(gauss)
    ]
    return [*bands, gauss[-1]]


def ssim(x: Tensor, y: Tensor, sigma: float = 1.5) -> Tensor:
    """Mean SSIM per image ``[N]`` of ``x, y [N, C, H, W]`` (data range 1, channels averaged)."""
    kernel = gaussian_kernel1d(sigma)
    mu_x, mu_y = separable_filter(x, kernel), separable_filter(y, kernel)
    var_x = separable_filter(x * x, kernel) - mu_x * mu_x
    var_y = separable_filter(y * y, kernel) - mu_y * mu_y
    cov = separable_filter(x * y, kernel) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + _SSIM_C1) / (mu_x * mu_x + mu_y * mu_y + _SSIM_C1)
    structure = (2 * cov + _SSIM_C2) / (var_x + var_y + _SSIM_C2)
    return (luminance * structure).flatten(1).mean(1)


def image_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences of ``x [N, C, H, W]``: ``[N, C, H, W-1]`` and ``[N, C, H-1, W]``."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


class PyramidPerceptualLoss(nn.Module):
    """Structural (multi-scale SSIM) + Laplacian-pyramid L1 + gradient L1; see the module doc.

    Input: ``pred, target [N, 3, H, W]`` (any leading dims are flattened into N) in [0, 1].
    Output: scalar, mean over images; ≥ 0, exactly 0 when ``pred == target``.
    """

    def __init__(
        self,
        levels: int = 4,
        ssim_weight: float = 1.0,
        laplacian_weight: float = 1.0,
        gradient_weight: float = 1.0,
    ):
        super().__init__()
        self.levels = levels
        self.ssim_weight, self.laplacian_weight = ssim_weight, laplacian_weight
        self.gradient_weight = gradient_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(target.shape)}")
        pred, target = pred.flatten(0, -4).float(), target.flatten(0, -4).float()
        levels = pyramid_levels(*pred.shape[-2:], self.levels)
        loss = pred.new_zeros(())
        if self.ssim_weight:
            pairs = zip(gaussian_pyramid(pred, levels), gaussian_pyramid(target, levels))
            structural = torch.stack([(1.0 - ssim(p, t)).mean() for p, t in pairs]).mean()
            loss = loss + self.ssim_weight * structural.clamp_min(0.0)
        if self.laplacian_weight:
            pairs = zip(laplacian_pyramid(pred, levels), laplacian_pyramid(target, levels))
            lap = torch.stack([(p - t).abs().mean() for p, t in pairs]).mean()
            loss = loss + self.laplacian_weight * lap
        if self.gradient_weight:
            (pdx, pdy), (tdx, tdy) = image_gradients(pred), image_gradients(target)
            edges = 0.5 * ((pdx - tdx).abs().mean() + (pdy - tdy).abs().mean())
            loss = loss + self.gradient_weight * edges
        return loss
