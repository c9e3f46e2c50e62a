"""Image-prior samples (WorldFM Stage I): single frames with a clip or zoom-level caption."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from datagen.clips.clip import Clip

from .video_task import resize_images, rgb_to_tensor


@dataclass
class ImageTaskConfig:
    """Frames and captions for the image prior.

    frames_per_clip: distinct random frames taken from each clip (all frames if the clip is
        shorter).
    height / width: resize target (bilinear; one given keeps the aspect ratio); None keeps size.
    caption_level: "clip" -> ``clip.caption``; int i -> ``clip.level_captions[i]`` (negative
        indices allowed; falls back to ``clip.caption`` when the clip has no such level, e.g. real
        videos); "random" -> uniform over the non-empty captions among the clip caption and the
        level captions, drawn independently per image (per-scale prompts for zoom worlds).
    """

    frames_per_clip: int = 1
    height: int | None = None
    width: int | None = None
    caption_level: str | int = "random"


def choose_caption(clip: Clip, rng: np.random.Generator, level: str | int) -> str:
    """The caption for one image of ``clip`` under ``level`` (see ``ImageTaskConfig``)."""
    if level == "clip":
        return clip.caption
    if level == "random":
        options = [c for c in [clip.caption, *clip.level_captions] if c]
        return options[int(rng.integers(0, len(options)))] if options else clip.caption
    if isinstance(level, int | np.integer) and not isinstance(level, bool):
        n = len(clip.level_captions)
        return clip.level_captions[int(level)] if -n <= level < n else clip.caption
    raise ValueError(f"caption_level must be 'random', 'clip' or an int, got {level!r}")


def image_samples(clip: Clip, rng: np.random.Generator, cfg: ImageTaskConfig) -> list[dict]:
    """``min(frames_per_clip, F)`` samples ``{"image": [3, H, W] float32 in [0, 1],
    "caption": str, "frame_idx": int64 scalar, "key": str}``, frames in increasing order."""
    if cfg.frames_per_clip < 1:
        raise ValueError(f"frames_per_clip must be >= 1, got {cfg.frames_per_clip}")
    count = min(cfg.frames_per_clip, clip.num_frames)
    idx = np.sort(rng.choice(clip.num_frames, size=count, replace=False))
    images, _ = resize_images(rgb_to_tensor(clip.rgb[idx]), None, cfg.height, cfg.width)
    return [
        {
            "image": images[i],
            "caption": choose_caption(clip, rng, cfg.caption_level),
            "frame_idx": torch.tensor(int(frame), dtype=torch.int64),
            "key": clip.key,
        }
        for i, frame in enumerate(idx)
    ]
