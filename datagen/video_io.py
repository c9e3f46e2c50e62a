"""Writing generated videos: mp4 (libx264 via imageio-ffmpeg) and their latents.

Frames come as torch ``[F, 3, H, W]`` float in [0, 1] or numpy ``[F, H, W, 3]`` uint8.
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from safetensors.torch import save_file


def to_uint8_frames(frames) -> np.ndarray:
    """``[F, 3, H, W]`` float in [0, 1] (torch or numpy) or ``[F, H, W, 3]`` uint8 -> uint8
    ``[F, H, W, 3]``."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().float().cpu().numpy()
    frames = np.asarray(frames)
    if frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3:
        return frames
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected frames [F, 3, H, W] or uint8 [F, H, W, 3], got {frames.shape}")
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


def write_mp4(frames, path: str | Path, fps: float = 8.0, quality: int = 8) -> Path:
    """Write an H.264 (yuv420p) mp4; H and W must be even. Returns the path."""
    video = to_uint8_frames(frames)
    if video.shape[1] % 2 or video.shape[2] % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {video.shape[1:3]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(
        path,
        video,
        plugin="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        quality=quality,
        macro_block_size=2,
    )
    return path


def read_mp4(path: str | Path) -> np.ndarray:
    """Decode a video to uint8 ``[F, H, W, 3]``."""
    return np.stack([np.asarray(f)[..., :3] for f in iio.imiter(path, plugin="FFMPEG")])


def save_video_sample(
    out_dir: str | Path, frames, latents: torch.Tensor | None, fps: float = 8.0, meta=None
) -> dict[str, Path]:
    """``out_dir/video.mp4``, ``out_dir/latents.safetensors`` (key ``latents``, ``[C, T, h, w]``
    or ``[B, C, T, h, w]`` as given) and ``out_dir/meta.json``. Returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    if frames is not None:
        paths["video"] = write_mp4(frames, out / "video.mp4", fps)
    if latents is not None:
        paths["latents"] = out / "latents.safetensors"
        save_file({"latents": latents.detach().float().cpu().contiguous()}, paths["latents"])
    paths["meta"] = out / "meta.json"
    paths["meta"].write_text(json.dumps(meta or {}, indent=2, sort_keys=True, default=str))
    return paths
