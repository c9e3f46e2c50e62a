"""Multi-resolution blending of per-level observations into a zoom stack (Powers of Ten §4.2).

Observation ``x_j`` sees layer ``i ≥ j``'s region in its centre footprint of depth ``k = i - j``,
at ``H/p^k × W/p^k`` pixels. If it were consistent, that crop would be ``D_k(L_i)`` — level ``k``
of ``L_i``'s Gaussian pyramid (steps of ``D_1``). Its own Laplacian pyramid therefore estimates
``L_i``'s bands ``k … K`` and nothing finer. Band ``m`` of the new ``L_i`` is the mean of the
estimates of that band from every observation that can represent it (``k ≤ m``); the blended
pyramid is collapsed (bilinear ×p expansion) into ``L_i``. This is the paper's "crop, rescale to
H × W, Laplacian pyramid, average corresponding bands", without letting a coarse observation's
empty fine bands dilute the detail. When all observations agree (``x = Π_image(L)``) every band
estimate is identical and the blend returns the observations exactly (up to float rounding).

``blend_naive`` is the ablation: crops are upsampled to ``H × W`` and averaged pixel-wise.
Observations whose footprint is not pixel-aligned (deeper than ``max_depth``) are not used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .stack import crop_centre, downsample, max_depth


def upsample(x: Tensor, p: int) -> Tensor:
    """Bilinear ×p expansion: ``[..., h, w]`` -> ``[..., h·p, w·p]``."""
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    y = F.interpolate(x.reshape(-1, 1, h, w), scale_factor=p, mode="bilinear", align_corners=False)
    return y.reshape(*lead, h * p, w * p)


def laplacian_pyramid(x: Tensor, p: int, levels: int, sigma: float | None = None) -> list[Tensor]:
    """``[..., H, W]`` -> ``levels`` band-pass images (``H/p^m`` each) + the low-pass residual."""
    bands, g = [], x
    for _ in range(levels):
        d = downsample(g, p, sigma)
        bands.append(g - upsample(d, p))
        g = d
    bands.append(g)
    return bands


def collapse(bands: list[Tensor], p: int) -> Tensor:
    """Inverse of ``laplacian_pyramid`` (exact): bands -> ``[..., H, W]``."""
    g = bands[-1]
    for b in reversed(bands[:-1]):
        g = b + upsample(g, p)
    return g


def blend_multires(obs: Tensor, p: int, sigma: float | None = None) -> Tensor:
    """Laplacian multi-resolution blending: observations ``[..., N, C, H, W]`` -> layers (same)."""
    N, (H, W) = obs.shape[-4], obs.shape[-2:]
    # Bands at or below depth K are averaged over the same observations, so the pyramids stop
    # at K: their low-pass residuals at H/p^K carry all of them (collapse is linear).
    K = levels = min(N - 1, max_depth(H, W, p))
    acc: list[Tensor] | None = None
    counts = torch.zeros(levels + 1, N, dtype=obs.dtype, device=obs.device)
    for k in range(K + 1):
        # x_j for j = 0 … N-1-k observe layers i = j + k = k … N-1.
        crops = crop_centre(obs[..., : N - k, :, :, :], p, k)
        bands = laplacian_pyramid(crops, p, levels - k, sigma)
        if acc is None:  # k = 0 comes first and holds every band
            acc = [b.clone() for b in bands]
        else:
            for m, b in enumerate(bands, start=k):
                acc[m][..., k:, :, :, :] += b
        counts[k:, k:] += 1
    shape = [1] * (obs.dim() - 4)
    avg = [a / counts[m].view(*shape, N, 1, 1, 1) for m, a in enumerate(acc)]
    return collapse(avg, p)


def blend_naive(obs: Tensor, p: int) -> Tensor:
    """Naive blending (ablation): mean of the bilinearly upsampled crops that see each layer."""
    N, (H, W) = obs.shape[-4], obs.shape[-2:]
    K = min(N - 1, max_depth(H, W, p))
    acc = obs.clone()
    counts = torch.ones(N, dtype=obs.dtype, device=obs.device)
    for k in range(1, K + 1):
        crops = crop_centre(obs[..., : N - k, :, :, :], p, k)
        lead, hw = crops.shape[:-2], crops.shape[-2:]
        up = F.interpolate(crops.reshape(-1, 1, *hw), size=(H, W), mode="bilinear")
        acc[..., k:, :, :, :] += up.reshape(*lead, H, W)
        counts[k:] += 1
    return acc / counts.view(*([1] * (obs.dim() - 4)), N, 1, 1, 1)
