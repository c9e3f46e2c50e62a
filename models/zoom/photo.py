"""Photograph-based zoom (Powers of Ten §4.4, Eq. 1).

Before every blend, the per-level clean estimates ``x̂_i`` are pulled towards an input photo ``ξ``
(the view at level ``level``, 0 = the most zoomed-out) by a few Adam steps on

    ℓ = Σ_i ‖D_{i-level}(x̂_i) − M_{i-level} ⊙ ξ‖²,   i ≥ level,

where ``D_k`` down-scales by ``p^k`` and zero-pads to ``H × W`` and ``M_k`` masks the centre
``H/p^k × W/p^k`` square. The zero padding cancels, so each term is computed on the footprint
crop. Levels whose footprint is not pixel-aligned (deeper than ``max_depth``) have no term.
The photo must be in the denoiser's space (pixels in [-1, 1], or VAE latents for latent models).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .stack import crop_centre, downsample_k, max_depth


@dataclass
class PhotoGuidance:
    """Eq. 1 guidance from ``image`` ``[C, H, W]``: ``steps`` Adam steps at ``lr`` per blend."""

    image: Tensor
    level: int = 0
    steps: int = 5
    lr: float = 0.1

    def loss(self, x_hat: Tensor, levels: list[int], p: int, sigma: float | None = None) -> Tensor:
        """Eq. 1 for estimates ``x_hat`` ``[n, C, H, W]`` of the given zoom ``levels`` (scalar)."""
        H, W = x_hat.shape[-2:]
        K = max_depth(H, W, p)
        xi = self.image.to(x_hat)
        total = x_hat.new_zeros(())
        for row, i in enumerate(levels):
            k = i - self.level
            if 0 <= k <= K:
                d = downsample_k(x_hat[row], p, k, sigma) - crop_centre(xi, p, k)
                total = total + d.square().sum()
        return total

    def fit(
        self, x_hat: Tensor, levels: list[int] | None, p: int, sigma: float | None = None
    ) -> Tensor:
        """``steps`` Adam steps on Eq. 1 starting from ``x_hat`` ``[n, C, H, W]``; returns the
        updated estimates (detached). ``levels`` default ``0 … n-1``."""
        levels = list(range(x_hat.shape[0])) if levels is None else list(levels)
        if not any(0 <= i - self.level <= max_depth(*x_hat.shape[-2:], p) for i in levels):
            return x_hat
        x = x_hat.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.steps):
                opt.zero_grad(set_to_none=True)
                self.loss(x, levels, p, sigma).backward()
                opt.step()
        return x.detach()
