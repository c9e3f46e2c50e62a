"""Camera encoder (Wonderland §3.2, Fig. A3): per-pixel Plücker rays -> camera tokens.

3D convolutions compress ``[B, F, 6, H, W]`` to the video latent grid ``[B, C, T', h, w]``
(temporal ×4 like CogVideoX's causal VAE: ``F = 4k + 1 -> T' = k + 1``; spatial ×8), the grid is
unfolded into the transformer's patch tokens (``p × p`` patches, token order ``(t, h/p, w/p)``,
exactly as ``CogVideoXPatchEmbed``), and a zero-initialised linear maps them to the token width.

Causality: the first frame is repeated 3 times in front (``4(k + 1)`` frames), so latent frame 0
sees frame 0 only and latent frame ``j ≥ 1`` sees frames ``4j-3 … 4j`` — the VAE's grouping.
Every convolution has ``kernel == stride`` (or 1), so each token depends only on the pixels of
its own latent patch: camera tokens are aligned with the video tokens cell by cell.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def zero_linear(in_features: int, out_features: int) -> nn.Linear:
    """``nn.Linear`` with weight and bias set to zero (ControlNet's zero layer)."""
    layer = nn.Linear(in_features, out_features)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _log2(value: int, what: str) -> int:
    n = round(math.log2(value)) if value > 0 else -1
    if n < 0 or 2**n != value:
        raise ValueError(f"{what} must be a power of two, got {value}")
    return n


class CameraEncoder(nn.Module):
    """Plücker ``[B, F, 6, H, W]`` -> camera tokens ``[B, T' · (h/p) · (w/p), out_dim]``.

    channels: widths of the downsampling stages; there are ``log2(spatial_compression)`` stages,
        the first ``log2(temporal_compression)`` of which also halve time.
    patch_size: the transformer's spatial patch size ``p``.
    """

    def __init__(
        self,
        out_dim: int,
        channels: tuple[int, ...] | list[int] = (64, 128, 256),
        in_channels: int = 6,
        temporal_compression: int = 4,
        spatial_compression: int = 8,
        patch_size: int = 2,
    ):
        super().__init__()
        n_space = _log2(spatial_compression, "spatial_compression")
        n_time = _log2(temporal_compression, "temporal_compression")
        if n_time > n_space:
            raise ValueError("temporal_compression may not exceed spatial_compression")
        channels = list(channels)
        if len(channels) != n_space:
            raise ValueError(f"need {n_space} stage widths for spatial ×{spatial_compression}")
        self.temporal_compression = temporal_compression
        self.spatial_compression = spatial_compression
        self.patch_size = patch_size
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, c_out in enumerate(channels):
            st = 2 if i < n_time else 1
            layers += [
                nn.Conv3d(c_in, c_out, kernel_size=(st, 2, 2), stride=(st, 2, 2)),
                nn.SiLU(),
                nn.Conv3d(c_out, c_out, kernel_size=1),
                nn.SiLU(),
            ]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.grid_channels = c_in
        self.proj = zero_linear(c_in * patch_size * patch_size, out_dim)

    def latent_grid(self, plucker: Tensor) -> Tensor:
        """``[B, F, 6, H, W]`` -> ``[B, C, T', H / s, W / s]`` (``T' = 1 + (F - 1) / t``)."""
        _, F, _, H, W = plucker.shape
        t, s = self.temporal_compression, self.spatial_compression
        if (F - 1) % t or H % (s * self.patch_size) or W % (s * self.patch_size):
            raise ValueError(
                f"Plücker [F={F}, H={H}, W={W}] needs F = {t}k+1 and H, W divisible by "
                f"{s * self.patch_size}"
            )
        x = plucker.permute(0, 2, 1, 3, 4)  # [B, 6, F, H, W]
        x = torch.cat([x[:, :, :1].expand(-1, -1, t - 1, -1, -1), x], dim=2)
        return self.convs(x.to(self.proj.weight.dtype))

    def unfold(self, grid: Tensor) -> Tensor:
        """``[B, C, T, h, w]`` -> ``[B, T · (h/p) · (w/p), C · p · p]`` in patch-embedding order."""
        B, C, T, h, w = grid.shape
        p = self.patch_size
        x = grid.reshape(B, C, T, h // p, p, w // p, p)
        x = x.permute(0, 2, 3, 5, 1, 4, 6)  # [B, T, h/p, w/p, C, p, p]
        return x.reshape(B, T * (h // p) * (w // p), C * p * p)

    def forward(self, plucker: Tensor) -> Tensor:
        return self.proj(self.unfold(self.latent_grid(plucker)))
