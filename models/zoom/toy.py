"""An analytic ε-prediction denoiser (exact for a Gaussian data prior), for tests and benchmarks.

For data ``x ~ N(μ, s² I)`` and ``z_t = α_t x + σ_t ε`` the exact noise prediction is

    ε*(z_t) = E[ε | z_t] = σ_t (z_t − α_t μ) / (α_t² s² + σ_t²).

The "prompt embedding" of a level carries its prior: ``embeds [B, C + 1, H, W]`` = ``μ`` (C
channels) and ``s`` (one channel). ``toy_targets`` makes a zoom-consistent multi-scale texture, so
prompts that describe one scene at ``N`` zoom levels are the rendered levels of one stack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .ddpm import DDPMSchedule
from .stack import crop_centre, render_images


class GaussianPriorDenoiser:
    """``(z [B, C, H, W], t [B], embeds [B, C+1, H, W]) -> ε [B, C, H, W]``, exact posterior."""

    def __init__(self, schedule: DDPMSchedule):
        self.ab = schedule.alphas_cumprod

    def __call__(self, z: Tensor, t: Tensor, embeds: Tensor) -> Tensor:
        ab = self.ab.to(z.device)[t].to(z.dtype).view(-1, 1, 1, 1)
        a, s2 = ab.sqrt(), 1 - ab
        mu, std = embeds[:, :-1], embeds[:, -1:]
        return s2.sqrt() * (z - a * mu) / (ab * std.square() + s2)


def prior_embeds(mu: Tensor, std: float | Tensor) -> Tensor:
    """``mu [B, C, H, W]``, prior std -> embeds ``[B, C+1, H, W]``."""
    s = torch.as_tensor(std, dtype=mu.dtype, device=mu.device).expand_as(mu[:, :1])
    return torch.cat([mu, s], dim=1)


def toy_targets(
    num_levels: int,
    channels: int,
    size: int,
    p: int = 2,
    detail: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A seamless zoom-consistent texture ``[N, C, size, size]`` in about [-1, 1]: level 0 is
    random multi-octave noise; level ``i+1`` is level ``i``'s centre footprint upsampled ×p plus
    new fine detail (weight ``detail``); the stack is then rendered (Π_image) so levels agree
    exactly. Targets with independent content per level (disagreeing prompts) are
    ``toy_targets(1, ...)`` drawn N times."""

    def octaves(n_oct: int) -> Tensor:
        x = torch.zeros(1, channels, size, size)
        for o in range(n_oct):
            n = max(size >> o, 1)
            r = torch.randn(1, channels, n, n, generator=generator)
            x += F.interpolate(r, size=(size, size), mode="bilinear") * 0.6 ** (n_oct - 1 - o)
        return x / x.std()

    levels = [octaves(5)]
    for _ in range(num_levels - 1):
        up = F.interpolate(crop_centre(levels[-1], p, 1), scale_factor=p, mode="bilinear")
        fine = octaves(2)
        levels.append((up + detail * fine) / (1 + detail**2) ** 0.5)
    layers = torch.cat(levels).clamp(-2, 2) / 2
    return render_images(layers, p)
