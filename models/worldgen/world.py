"""The state of a multi-scale world: scale-adaptive surfels and the zoom levels that created them.

Level ``l`` has a camera (``K``, ``c2w``; float64), its image and registered z-depth at ``H × W``,
and the log scale ``λ_l = λ_0 + l·log2 p`` stamped on its surfels as their native scale.
``λ_0 = log2(f_0 / z_ref)``: pixels per world unit of the base view at its median depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from models.surfels import SurfelSet


@dataclass
class ZoomLevel:
    """One level: camera ``K [3, 3]`` / ``c2w [4, 4]`` (float64), ``image [3, H, W]`` in [0, 1],
    registered ``depth [H, W]`` (z-depth), the zoom step that made it (``fixed [2]`` pixel of the
    parent level's image and ``target [3]`` scene point; None for level 0), the coarse render at
    its camera before it was generated (``coarse``: rgb ``[3, H, W]``, alpha / depth ``[H, W]``)
    and json-able ``stats``."""

    index: int
    prompt: str
    K: Tensor
    c2w: Tensor
    log_scale: float
    image: Tensor
    depth: Tensor
    fixed: Tensor | None = None
    target: Tensor | None = None
    coarse: dict[str, Tensor] | None = None
    num_surfels: int = 0
    stats: dict = field(default_factory=dict)


@dataclass
class World:
    """Surfels (native scales = their levels' ``log_scale``) + levels, zoom factor ``p``."""

    surfels: SurfelSet
    levels: list[ZoomLevel]
    p: int
    zoom_mode: str = "dolly"

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the level images."""
        return tuple(self.levels[0].image.shape[-2:])

    @property
    def base_log_scale(self) -> float:
        return self.levels[0].log_scale

    def level_log_scales(self, device=None) -> Tensor:
        """``[L]`` float64, strictly increasing."""
        return torch.tensor(
            [lv.log_scale for lv in self.levels], dtype=torch.float64, device=device
        )

    def native_level(self) -> Tensor:
        """Level index ``[N]`` (long) of every surfel, from its native scale."""
        lv = self.level_log_scales(self.surfels.means.device)
        nat = self.surfels.native_scale.to(torch.float64)
        return (nat[:, None] - lv[None, :]).abs().argmin(dim=1)

    def level_surfels(self, index: int) -> SurfelSet:
        """The surfels created by level ``index``."""
        return self.surfels.select(self.native_level() == index)


def level_log_scale(base: float, p: int, index: int) -> float:
    """``λ_l = λ_0 + l·log2 p``."""
    return base + index * math.log2(p)


def base_log_scale(K: Tensor, depth: Tensor, valid: Tensor | None = None) -> float:
    """``λ_0 = log2(f / median z)`` of a view with intrinsics ``K [3, 3]`` and depth ``[H, W]``."""
    z = depth[valid] if valid is not None else depth[depth > 0]
    if z.numel() == 0:
        raise ValueError("base view has no valid depth")
    f = float((K[0, 0] * K[1, 1]).sqrt())
    return math.log2(f / float(z.median()))
