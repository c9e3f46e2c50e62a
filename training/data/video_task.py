"""Camera-guided video model samples (Wonderland §3.2): a frame window with per-pixel Plücker rays.

``video_sample`` maps one decoded ``Clip`` (numpy) to a dict of torch tensors. It is a pure
function of ``(clip, rng, cfg)``: every random choice comes from the numpy ``Generator``.

The small helpers here (``rgb_to_tensor``, ``cameras_to_tensor``, ``resize_images``,
``relative_to``) are shared by the other task modules of ``training.data``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from datagen.clips.clip import Clip
from models.geometry import invert_se3, plucker_rays, scale_K


@dataclass
class VideoTaskConfig:
    """A window of ``num_frames`` frames spaced by ``stride``.

    height / width: resize target (bilinear, K scaled); giving only one keeps the aspect ratio;
        None for both keeps the clip's resolution.
    relative_to_first: express every c2w in the first window frame's camera frame
        (``c2w_0^-1 c2w_i``; frame 0 becomes the identity) before computing Plücker rays.
    random_start: draw the window start uniformly; otherwise start at frame 0.
    """

    num_frames: int = 49
    stride: int = 1
    height: int | None = None
    width: int | None = None
    relative_to_first: bool = True
    random_start: bool = True


def rgb_to_tensor(rgb: np.ndarray) -> Tensor:
    """uint8 ``[..., H, W, 3]`` -> float32 ``[..., 3, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).movedim(-1, -3).float().div_(255.0)


def cameras_to_tensor(K: np.ndarray, c2w: np.ndarray) -> tuple[Tensor, Tensor]:
    """numpy ``K [..., 3, 3]``, ``c2w [..., 4, 4]`` -> float64 tensors (cast to float32 at the end)."""
    return (
        torch.from_numpy(np.asarray(K, dtype=np.float64).copy()),
        torch.from_numpy(np.asarray(c2w, dtype=np.float64).copy()),
    )


def relative_to(c2w: Tensor, anchor_c2w: Tensor) -> Tensor:
    """``anchor_c2w^-1 @ c2w`` for ``c2w [..., 4, 4]`` and one ``anchor_c2w [4, 4]``."""
    return invert_se3(anchor_c2w) @ c2w


def output_size(H: int, W: int, height: int | None, width: int | None) -> tuple[int, int]:
    """Target (H, W): both given -> as given; one given -> the other keeps the aspect ratio."""
    if height is None and width is None:
        return H, W
    if height is None:
        height = max(1, round(H * width / W))
    if width is None:
        width = max(1, round(W * height / H))
    if height < 1 or width < 1:
        raise ValueError(f"resize target must be positive, got height={height}, width={width}")
    return int(height), int(width)


def resize_images(
    images: Tensor, K: Tensor | None, height: int | None, width: int | None
) -> tuple[Tensor, Tensor | None]:
    """Bilinear resize of ``images [N, 3, H, W]`` and matching intrinsics ``K [N, 3, 3]``.

    ``K`` is scaled by ``(width / W, height / H)`` (pixel centres at +0.5, consistent with
    ``align_corners=False``). Antialiasing is on, so downsampling does not alias. No-op when the
    size does not change.
    """
    H, W = images.shape[-2:]
    out_h, out_w = output_size(H, W, height, width)
    if (out_h, out_w) == (H, W):
        return images, K
    resized = torch.nn.functional.interpolate(
        images, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=True
    ).clamp_(0.0, 1.0)
    if K is not None:
        K = scale_K(K, out_w / W, out_h / H)
    return resized, K


def window_indices(
    num_available: int, count: int, stride: int, rng: np.random.Generator, random_start: bool, key
) -> np.ndarray:
    """``count`` indices ``start + stride * i`` inside ``[0, num_available)``; ValueError if short."""
    if count < 1 or stride < 1:
        raise ValueError(f"need count >= 1 and stride >= 1, got count={count}, stride={stride}")
    span = (count - 1) * stride + 1
    if num_available < span:
        raise ValueError(
            f"clip {key!r} has {num_available} frames; a window of {count} frames with stride "
            f"{stride} needs {span}"
        )
    start = int(rng.integers(0, num_available - span + 1)) if random_start else 0
    return start + stride * np.arange(count, dtype=np.int64)


def video_sample(clip: Clip, rng: np.random.Generator, cfg: VideoTaskConfig) -> dict:
    """One training window of ``clip`` for the camera-guided video model.

    Returns (F = cfg.num_frames, H/W = output size):
        frames [F, 3, H, W] float32 in [0, 1]; first_frame [3, H, W] (= frames[0]);
        plucker [F, 6, H, W] float32 (``plucker_rays`` of the returned K, c2w);
        K [F, 3, 3] float32 (scaled when resized); c2w [F, 4, 4] float32 (relative to the
        first window frame when ``cfg.relative_to_first``); frame_idx [F] int64 (clip indices);
        caption str; key str.
    Raises ValueError naming the clip key when the clip is shorter than the window.
    """
    idx = window_indices(
        clip.num_frames, cfg.num_frames, cfg.stride, rng, cfg.random_start, clip.key
    )
    frames = rgb_to_tensor(clip.rgb[idx])
    K, c2w = cameras_to_tensor(clip.K[idx], clip.c2w[idx])
    if cfg.relative_to_first:
        c2w = relative_to(c2w, c2w[0])
    frames, K = resize_images(frames, K, cfg.height, cfg.width)
    H, W = frames.shape[-2:]
    K32, c2w32 = K.float(), c2w.float()
    return {
        "frames": frames,
        "first_frame": frames[0].clone(),
        "plucker": plucker_rays(K32, c2w32, H, W),
        "K": K32,
        "c2w": c2w32,
        "frame_idx": torch.from_numpy(idx),
        "caption": clip.caption,
        "key": clip.key,
    }
