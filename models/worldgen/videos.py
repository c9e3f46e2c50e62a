"""Frames of a world's videos: the continuous zoom from the landscape to the finest level and a
short orbit at each level, rendered from the surfels with (coverage-aware) opacity modulation.

The zoom path interpolates each step's camera log-linearly (``cameras.zoom_path``: focal or camera
distance ×``p^t``), ``frames_per_level`` frames per step plus the finest level's own view:
``(L − 1)·frames_per_level + 1`` frames; frame ``k·frames_per_level`` is level ``k``'s camera.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .cameras import orbit_cameras, zoom_path
from .render import render_world, world_coverage
from .world import World


def zoom_cameras(world: World, frames_per_level: int = 16) -> tuple[Tensor, Tensor]:
    """``K [T, 3, 3]``, ``c2w [T, 4, 4]`` (float64) of the zoom path over all levels."""
    if frames_per_level < 1:
        raise ValueError(f"frames_per_level must be >= 1, got {frames_per_level}")
    Ks, cs = [], []
    ts = torch.arange(frames_per_level, dtype=torch.float64) / frames_per_level
    for prev, nxt in zip(world.levels[:-1], world.levels[1:]):
        K, c = zoom_path(prev.K, prev.c2w, world.p, nxt.fixed, nxt.target, ts, world.zoom_mode)
        Ks.append(K)
        cs.append(c)
    Ks.append(world.levels[-1].K[None])
    cs.append(world.levels[-1].c2w[None])
    return torch.cat(Ks), torch.cat(cs)


def level_target(world: World, index: int) -> Tensor:
    """A level's orbit centre ``[3]``: the scene point at its image centre (registered depth)."""
    lv = world.levels[index]
    H, W = lv.depth.shape
    d = lv.depth[H // 2 - 1 : H // 2 + 1, W // 2 - 1 : W // 2 + 1]
    z = float(d[d > 0].mean()) if (d > 0).any() else float(lv.depth[lv.depth > 0].median())
    pix = torch.tensor([W / 2, H / 2, 1.0], dtype=torch.float64)
    cam = torch.linalg.solve(lv.K.to(torch.float64), pix) * z
    return lv.c2w[:3, :3].to(torch.float64) @ cam + lv.c2w[:3, 3].to(torch.float64)


def orbit_cameras_of(
    world: World, index: int, num_frames: int = 24, max_angle_deg: float = 10.0
) -> tuple[Tensor, Tensor]:
    """``K [T, 3, 3]``, ``c2w [T, 4, 4]``: a closed orbit around level ``index``'s centre point."""
    lv = world.levels[index]
    c2w = orbit_cameras(lv.c2w.to(torch.float64), level_target(world, index), num_frames,
                        max_angle_deg)  # fmt: skip
    return lv.K[None].expand(num_frames, 3, 3).to(torch.float64), c2w


@torch.no_grad()
def render_frames(
    world: World,
    K: Tensor,
    c2w: Tensor,
    progress: Callable[[int], None] | None = None,
    **render_kwargs,
) -> Tensor:
    """Frames ``[T, 3, H, W]`` in [0, 1] of cameras ``K [T, 3, 3]``, ``c2w [T, 4, 4]`` (coverage is
    computed once); ``render_kwargs`` go to ``render_world``."""
    cover = world_coverage(world)
    frames = []
    for k, c in zip(K, c2w):
        frames.append(render_world(world, k, c, cover=cover, **render_kwargs).rgb[0].clamp(0, 1))
        if progress is not None:
            progress(1)
    return torch.stack(frames)
