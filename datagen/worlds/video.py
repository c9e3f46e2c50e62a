"""Videos rendered from procedural worlds: stand-ins for real footage in the ingestion demo and
tests (the exact depth and poses stay available as ground truth)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from datagen.worlds.generate import generate_world
from datagen.worlds.render import render_views
from datagen.worlds.spec import WorldSpec
from datagen.worlds.world import World
from models.geometry import K_from_fov


def write_video(path: str | Path, frames: np.ndarray, fps: float = 10.0, crf: int = 12) -> Path:
    """uint8 ``[F, H, W, 3]`` -> H.264 mp4 (``crf`` 12: near-lossless, keeps fine texture)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # invisible to inbox listings
    iio.imwrite(
        tmp, np.asarray(frames), plugin="FFMPEG", fps=fps, codec="libx264",
        macro_block_size=1, ffmpeg_params=["-crf", str(crf)],
    )  # fmt: skip
    tmp.replace(path)
    return path


def render_frames(
    world: World, c2w: np.ndarray, H: int, W: int, fov_deg: float = 60.0
) -> dict[str, np.ndarray]:
    """``rgb`` uint8 ``[F, H, W, 3]``, ``depth`` ``[F, H, W]``, ``c2w`` ``[F, 4, 4]``, ``K``
    ``[3, 3]`` along the poses ``c2w``."""
    K = K_from_fov(fov_deg, H, W, dtype=torch.float64).numpy()
    views = render_views(world, K, c2w, H, W)
    return {
        "rgb": views["rgb"],
        "depth": views["depth"],
        "c2w": np.asarray(c2w),
        "K": K,
    }


def world_video(
    path: str | Path,
    spec: WorldSpec,
    num_frames: int = 32,
    size: int = 192,
    seed: int = 0,
    template: str = "orbit",
    fps: float = 10.0,
) -> dict[str, np.ndarray]:
    """Render a sampled ``template`` trajectory of the world ``spec`` to an mp4 at ``path``;
    returns the ground truth (``render_frames``)."""
    from datagen.trajectories.sampler import sample_trajectory  # (sampler imports worlds)

    world = generate_world(spec)
    traj = sample_trajectory(world, num_frames, np.random.default_rng(seed), template)
    out = render_frames(world, traj.c2w, size, size)
    write_video(path, out["rgb"], fps)
    return out
