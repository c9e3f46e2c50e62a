"""LaLRM samples (Wonderland §3.3, App. D.2): a strided context clip plus seen/unseen supervision.

The context is ``num_context`` frames ``start, start + stride, ...`` (a large stride covers a wide
scene range). Supervision views are

- **seen**: ``num_seen`` distinct frames drawn from the context frames (the views the 3D VAE
  decodes directly from the latent), and
- **unseen**: ``num_unseen`` distinct frames disjoint from the context, drawn uniformly from the
  remaining frames inside the covered range ``[first context frame, last context frame]`` and the
  frames outside it ("the remaining frames within the scene range and the frames outside the scene
  range are considered unseen views").

Padding (keeps batches stackable): the supervision block always has ``V = num_seen + num_unseen``
slots, seen first then unseen (each group sorted by frame index). When the clip has fewer than
``num_unseen`` non-context frames, all of them are used and the remaining unseen slots repeat them
cyclically (or repeat the seen views when there is no unseen frame at all) with
``sup_valid = False``; the loss must ignore slots where ``sup_valid`` is False. ``num_unseen``
reports the number of real unseen views. With ``strict_unseen`` a short clip raises instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from datagen.clips.clip import Clip
from models.geometry import plucker_rays

from .video_task import (
    cameras_to_tensor,
    relative_to,
    resize_images,
    rgb_to_tensor,
    window_indices,
)


@dataclass
class LaLRMTaskConfig:
    """Context/supervision sampling for LaLRM.

    num_context / stride: the context clip (49 frames; Wonderland samples with a large stride).
    num_seen: supervision views drawn from the context (Wonderland: 24 of 48 views).
    num_unseen: supervision views disjoint from the context (Wonderland: 24).
    relative_to_first: express all poses (context and supervision) in the first context frame.
    random_start: draw the context start uniformly; otherwise start at frame 0.
    strict_unseen: raise when fewer than ``num_unseen`` non-context frames exist (else pad).
    use_latents: add ``latents`` when the clip has them. Stored latents encode *all* F frames of
        the clip, so the context must then be the whole clip (``num_context = F``, ``stride = 1``,
        as for generated clips); any other context raises. Set False to ignore stored latents.
    height / width: resize target of context and supervision frames (bilinear, K scaled; one
        given keeps the aspect ratio; None keeps the clip's resolution). Clips with stored
        latents must already be at the target size.
    """

    num_context: int = 49
    stride: int = 3
    num_seen: int = 24
    num_unseen: int = 24
    relative_to_first: bool = True
    random_start: bool = True
    strict_unseen: bool = False
    use_latents: bool = True
    height: int | None = None
    width: int | None = None


def _pad(indices: np.ndarray, fallback: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``indices`` padded to ``size`` by cyclic repetition (of ``fallback`` when empty) + validity."""
    valid = np.zeros(size, dtype=bool)
    valid[: len(indices)] = True
    if len(indices) >= size:
        return indices[:size], valid
    source = indices if len(indices) else fallback
    fill = np.resize(source, size - len(indices))
    return np.concatenate([indices, fill]).astype(np.int64), valid


def lalrm_sample(clip: Clip, rng: np.random.Generator, cfg: LaLRMTaskConfig) -> dict:
    """One LaLRM training sample of ``clip``.

    Returns (Fc = cfg.num_context, V = cfg.num_seen + cfg.num_unseen):
        context [Fc, 3, H, W] float32 in [0, 1]; context_plucker [Fc, 6, H, W] float32;
        context_K [Fc, 3, 3]; context_c2w [Fc, 4, 4]; context_idx [Fc] int64;
        sup [V, 3, H, W]; sup_K [V, 3, 3]; sup_c2w [V, 4, 4]; sup_idx [V] int64;
        sup_is_seen [V] bool (the first num_seen slots); sup_valid [V] bool (False on padding);
        num_unseen int (real unseen views, <= cfg.num_unseen); key str;
        latents [C, t, h, w] float32 when the clip has latents (see ``use_latents``).
    Cameras are float32, relative to the first context frame when ``cfg.relative_to_first``.
    """
    key = clip.key
    F = clip.num_frames
    context_idx = window_indices(F, cfg.num_context, cfg.stride, rng, cfg.random_start, key)
    if not 0 <= cfg.num_seen <= cfg.num_context:
        raise ValueError(
            f"clip {key!r}: num_seen={cfg.num_seen} must lie in [0, num_context={cfg.num_context}]"
        )
    if cfg.num_unseen < 0:
        raise ValueError(f"num_unseen must be >= 0, got {cfg.num_unseen}")

    seen = np.sort(rng.choice(context_idx, size=cfg.num_seen, replace=False)).astype(np.int64)
    pool = np.setdiff1d(np.arange(F, dtype=np.int64), context_idx)  # inside + outside the range
    count = min(cfg.num_unseen, len(pool))
    if count < cfg.num_unseen and cfg.strict_unseen:
        raise ValueError(
            f"clip {key!r}: {len(pool)} frames outside the context, {cfg.num_unseen} unseen "
            f"views required (strict_unseen)"
        )
    unseen = np.sort(rng.choice(pool, size=count, replace=False)).astype(np.int64)
    fallback = seen if len(seen) else context_idx
    unseen_slots, unseen_valid = _pad(unseen, fallback, cfg.num_unseen)
    sup_idx = np.concatenate([seen, unseen_slots]).astype(np.int64)
    sup_is_seen = np.concatenate([np.ones(len(seen), bool), np.zeros(cfg.num_unseen, bool)])
    sup_valid = np.concatenate([np.ones(len(seen), bool), unseen_valid])

    K_ctx, c2w_ctx = cameras_to_tensor(clip.K[context_idx], clip.c2w[context_idx])
    K_sup, c2w_sup = cameras_to_tensor(clip.K[sup_idx], clip.c2w[sup_idx])
    if cfg.relative_to_first:
        first = c2w_ctx[0].clone()
        c2w_ctx = relative_to(c2w_ctx, first)
        c2w_sup = relative_to(c2w_sup, first)
    context, K_ctx = resize_images(
        rgb_to_tensor(clip.rgb[context_idx]), K_ctx, cfg.height, cfg.width
    )
    sup, K_sup = resize_images(rgb_to_tensor(clip.rgb[sup_idx]), K_sup, cfg.height, cfg.width)
    K_ctx, c2w_ctx, K_sup, c2w_sup = (t.float() for t in (K_ctx, c2w_ctx, K_sup, c2w_sup))
    H, W = context.shape[-2:]

    sample = {
        "context": context,
        "context_plucker": plucker_rays(K_ctx, c2w_ctx, H, W),
        "context_K": K_ctx,
        "context_c2w": c2w_ctx,
        "context_idx": torch.from_numpy(context_idx),
        "sup": sup,
        "sup_K": K_sup,
        "sup_c2w": c2w_sup,
        "sup_idx": torch.from_numpy(sup_idx),
        "sup_is_seen": torch.from_numpy(sup_is_seen),
        "sup_valid": torch.from_numpy(sup_valid),
        "num_unseen": int(count),
        "key": key,
    }
    if clip.latents is not None and cfg.use_latents:
        if not np.array_equal(context_idx, np.arange(F)):
            raise ValueError(
                f"clip {key!r} has latents of all {F} frames, but the context is "
                f"{cfg.num_context} frames with stride {cfg.stride}; use num_context={F}, "
                f"stride=1 for latent clips or set use_latents=False"
            )
        if (H, W) != tuple(clip.size):
            raise ValueError(
                f"clip {key!r} has latents at {clip.size[0]}x{clip.size[1]}; resizing it to "
                f"{H}x{W} would misalign them (store the clip at the target size)"
            )
        sample["latents"] = torch.from_numpy(np.asarray(clip.latents, dtype=np.float32).copy())
    return sample
