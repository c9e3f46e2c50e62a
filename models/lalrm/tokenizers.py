"""LaLRM tokenizers (Wonderland §3.3, App. D.1): latent tokens and Plücker pose tokens of equal
count, both in ``(t, y, x)`` raster order.

* Latents ``[B, C, T', h, w]`` are patchified spatially with patch ``p`` (a Conv3d of kernel =
  stride ``(1, p, p)``) → ``T' · (h/p) · (w/p)`` tokens.
* The Plücker embedding ``[B, F, 6, H, W]`` of the ``F = 4k + 1`` pixel frames is 3D-patchified with
  a Conv3d of kernel = stride ``(4, 8p, 8p)`` (paper: ``(4, 16, 16)``).

Causal first frame: the video VAE encodes frame 0 alone into latent frame 0 and frames
``4t-3 … 4t`` into latent frame ``t ≥ 1`` (``T' = k + 1``). To give the Plücker stream the same
grouping, frame 0's rays are replicated three times in front (``F + 3 = 4 T'`` frames), so pose
token ``t`` covers exactly the pixel frames of latent frame ``t``: token 0 = frame 0 four times,
token ``t`` = frames ``4t-3 … 4t``. The decoder (``model``) drops the same three leading frames.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import LaLRMConfig


def pad_causal_frames(x: Tensor, temporal: int = 4) -> Tensor:
    """``[B, ch, F, H, W]`` with ``F = temporal·k + 1`` → ``[B, ch, temporal·(k + 1), H, W]`` by
    replicating frame 0 ``temporal - 1`` times in front."""
    F = x.shape[2]
    if (F - 1) % temporal:
        raise ValueError(f"{F} frames: the LaLRM needs F = {temporal}k + 1 pixel frames")
    return torch.cat([x[:, :, :1].expand(-1, -1, temporal - 1, -1, -1), x], dim=2)


def grid_to_tokens(x: Tensor) -> Tensor:
    """``[B, D, t, y, x]`` → tokens ``[B, t·y·x, D]`` in ``(t, y, x)`` raster order."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_grid(tokens: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """Inverse of ``grid_to_tokens``: ``[B, N, D]`` → ``[B, D, *grid]``."""
    B, _, D = tokens.shape
    return tokens.transpose(1, 2).reshape(B, D, *grid)


class LatentTokenizer(nn.Module):
    """Latents ``[B, C, T', h, w]`` → tokens ``[B, T'·(h/p)·(w/p), D]`` and the grid
    ``(T', h/p, w/p)``."""

    def __init__(self, channels: int, dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(
            channels, dim, kernel_size=(1, patch, patch), stride=(1, patch, patch)
        )

    def forward(self, latents: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
        h, w = latents.shape[-2:]
        if h % self.patch or w % self.patch:
            raise ValueError(f"latent size {h}x{w} not divisible by the patch {self.patch}")
        grid = self.proj(latents)
        return grid_to_tokens(grid), tuple(grid.shape[2:])


class PluckerTokenizer(nn.Module):
    """Plücker embedding ``[B, F, 6, H, W]`` (``F = 4k + 1``) → tokens ``[B, T'·(H/8p)·(W/8p), D]``
    and the grid ``(T', H/8p, W/8p)``; see the module doc for the causal first frame."""

    def __init__(self, dim: int, patch: tuple[int, int, int], channels: int = 6):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(channels, dim, kernel_size=patch, stride=patch)

    def forward(self, plucker: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
        H, W = plucker.shape[-2:]
        if H % self.patch[1] or W % self.patch[2]:
            raise ValueError(f"image size {H}x{W} not divisible by the patch {self.patch[1:]}")
        x = pad_causal_frames(plucker.transpose(1, 2), self.patch[0])
        grid = self.proj(x)
        return grid_to_tokens(grid), tuple(grid.shape[2:])


class LaLRMTokenizer(nn.Module):
    """Both tokenizers + channel concatenation → Linear to the transformer width.

    latents ``[B, C, T', h, w]``, plucker ``[B, F, 6, 8h, 8w]`` → tokens ``[B, N, width]``, grid.
    """

    def __init__(self, config: LaLRMConfig):
        super().__init__()
        D = config.width
        self.latent = LatentTokenizer(config.latent_channels, D, config.latent_patch)
        self.plucker = PluckerTokenizer(D, config.plucker_patch)
        self.merge = nn.Linear(2 * D, D)

    def forward(self, latents: Tensor, plucker: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
        latent_tokens, grid = self.latent(latents)
        pose_tokens, pose_grid = self.plucker(plucker)
        if grid != pose_grid:
            raise ValueError(
                f"latent token grid {grid} != Plücker token grid {pose_grid}: latents "
                f"{tuple(latents.shape)} do not match Plücker {tuple(plucker.shape)}"
            )
        return self.merge(torch.cat([latent_tokens, pose_tokens], dim=-1)), grid
