"""WorldFM frame-model triplets (InSpatio-WorldFM §2.4.1): target, point-cloud anchor, reference.

A clip carries 4 reference frames (``ref_idx``, from which the global point cloud was built) and
targets (``target_idx``) with the point-cloud render at each target pose (``pcr_rgb``,
``pcr_mask``). For a target, the reference is the temporally closest frame of the reference group.

Anchor augmentation — our reading of "random shuffling and masking strategies, simulating the
disorder and discreteness encountered in real-world scenarios" (applied in this order, each with
its own probability, all randomness from the numpy ``Generator``):

(a) **local shuffling** (``shuffle_prob``, window ``w = shuffle_window``): a random local
    permutation of the render. The image is cut into ``(w+1) x (w+1)`` tiles on a randomly offset
    grid and the pixels of every tile are permuted at random (rgb and validity move together), so
    each point moves by at most ``w`` pixels in x and y, i.e. inside its ``(2w+1) x (2w+1)``
    neighbourhood. Valid points swap places with each other or with holes: it simulates jittered,
    disordered point projections (pose/depth noise, z-fighting) while keeping the multiset of
    colours. Vectorised (one argsort per tile batch), a true permutation (no duplicated points).
(b) **discreteness** (``dropout_prob``): drop a random fraction ``~ U(dropout_rate)`` of the pixels
    (mask -> 0, rgb -> 0), simulating sparse point clouds.
(c) **block masking** (``block_mask_prob``): zero one random rectangle of at most
    ``block_mask_max_frac`` of the image area (missing geometry, occlusion holes).

Then, with ``anchor_mask_prob``, the whole anchor is dropped (rgb and mask zero,
``anchor_masked = True``): the paper's "random anchor masking" of later training; the training loop
may also drop anchors itself. Invariant: wherever ``anchor_mask`` is 0, ``anchor`` is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from datagen.clips.clip import Clip

from .video_task import cameras_to_tensor, relative_to, rgb_to_tensor


@dataclass
class FrameTaskConfig:
    """Anchor augmentation probabilities (see module docstring).

    shuffle_prob / shuffle_window: local shuffling probability and window radius w (pixels).
    dropout_prob / dropout_rate: point-dropout probability and the (min, max) dropped fraction.
    block_mask_prob / block_mask_max_frac: rectangle-masking probability and maximum area fraction.
    anchor_mask_prob: probability of dropping the whole anchor.
    relative_to_reference: express target and reference c2w in the reference camera's frame
        (reference becomes the identity); False keeps the clip's world frame.
    """

    shuffle_prob: float = 0.5
    shuffle_window: int = 2
    dropout_prob: float = 0.5
    dropout_rate: tuple[float, float] = (0.0, 0.3)
    block_mask_prob: float = 0.3
    block_mask_max_frac: float = 0.25
    anchor_mask_prob: float = 0.0
    relative_to_reference: bool = False


def reference_for_target(target: int, ref_idx, timestamps=None) -> int:
    """The frame index in ``ref_idx`` temporally closest to ``target``.

    Distance is ``|timestamps[r] - timestamps[target]|`` when ``timestamps`` is given, else
    ``|r - target|``. Ties (within 1e-9 relative) go to the earlier reference (smaller time, then
    smaller index).
    """
    refs = [int(r) for r in ref_idx]
    if not refs:
        raise ValueError("ref_idx is empty: no reference frame to choose from")
    if timestamps is None:
        times = np.asarray(refs, dtype=np.float64)
        t0 = float(target)
    else:
        ts = np.asarray(timestamps, dtype=np.float64)
        times = ts[refs]
        t0 = float(ts[int(target)])
    dist = np.abs(times - t0)
    best = dist.min()
    tied = np.flatnonzero(dist <= best + 1e-9 * max(1.0, abs(best), abs(t0)))
    return min((times[i], refs[i]) for i in tied)[1]


def _local_shuffle(rgb: np.ndarray, mask: np.ndarray, window: int, rng: np.random.Generator):
    """Random permutation of ``(w+1) x (w+1)`` tiles on a random grid offset (see docstring)."""
    H, W = mask.shape
    s = window + 1
    oy, ox = (int(v) for v in rng.integers(0, s, size=2))
    Hp = -(-(H + oy) // s) * s
    Wp = -(-(W + ox) // s) * s
    src = np.full((Hp, Wp), -1, dtype=np.int64)
    src[oy : oy + H, ox : ox + W] = np.arange(H * W).reshape(H, W)
    tiles = src.reshape(Hp // s, s, Wp // s, s).transpose(0, 2, 1, 3).reshape(-1, s * s)
    pad = tiles < 0
    keys = rng.random(tiles.shape)
    keys[pad] = 2.0  # padding sorts last on both sides, so it maps onto itself
    src_order = np.argsort(keys, axis=1, kind="stable")
    dst_order = np.argsort(pad, axis=1, kind="stable")  # real slots first, in position order
    shuffled = np.empty_like(tiles)
    np.put_along_axis(shuffled, dst_order, np.take_along_axis(tiles, src_order, axis=1), axis=1)
    perm = shuffled.reshape(Hp // s, Wp // s, s, s).transpose(0, 2, 1, 3).reshape(Hp, Wp)
    perm = perm[oy : oy + H, ox : ox + W].reshape(-1)
    return rgb.reshape(-1, 3)[perm].reshape(H, W, 3), mask.reshape(-1)[perm].reshape(H, W)


def _block(H: int, W: int, max_frac: float, rng: np.random.Generator):
    """A random rectangle ``(y0, x0, bh, bw)`` of area <= ``max_frac * H * W`` (None if < 1 px)."""
    max_area = max_frac * H * W
    if max_area < 1:
        return None
    area = rng.uniform(1.0, max_area)
    aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    bh = int(np.clip(np.floor(np.sqrt(area * aspect)), 1, H))
    bw = int(np.clip(np.floor(area / bh), 1, W))
    y0 = int(rng.integers(0, H - bh + 1))
    x0 = int(rng.integers(0, W - bw + 1))
    return y0, x0, bh, bw


def augment_anchor(
    rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cfg: FrameTaskConfig
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Augment one point-cloud render: ``rgb [H, W, 3]`` uint8, ``mask [H, W]`` bool.

    Returns new ``(rgb, mask, anchor_masked)`` with rgb zero wherever mask is False (inputs are not
    modified). Applies (a) local shuffling, (b) point dropout, (c) block masking, then whole-anchor
    masking, each with its probability from ``cfg`` (see module docstring).
    """
    mask = np.asarray(mask, dtype=bool).copy()
    rgb = np.where(mask[..., None], rgb, 0).astype(np.uint8)
    H, W = mask.shape
    if cfg.shuffle_window > 0 and rng.random() < cfg.shuffle_prob:
        rgb, mask = _local_shuffle(rgb, mask, cfg.shuffle_window, rng)
    if rng.random() < cfg.dropout_prob:
        low, high = cfg.dropout_rate
        rate = rng.uniform(low, high) if high > low else low
        mask &= rng.random((H, W)) >= rate
    if rng.random() < cfg.block_mask_prob:
        block = _block(H, W, cfg.block_mask_max_frac, rng)
        if block is not None:
            y0, x0, bh, bw = block
            mask[y0 : y0 + bh, x0 : x0 + bw] = False
    anchor_masked = bool(rng.random() < cfg.anchor_mask_prob)
    if anchor_masked:
        mask[:] = False
    rgb = np.where(mask[..., None], rgb, 0).astype(np.uint8)
    return rgb, mask, anchor_masked


def _check(clip: Clip) -> None:
    if not clip.target_idx or not clip.ref_idx:
        raise ValueError(f"clip {clip.key!r} needs ref_idx and target_idx for the frame task")
    if clip.pcr_rgb is None or clip.pcr_mask is None:
        raise ValueError(f"clip {clip.key!r} has no point-cloud render (pcr_rgb / pcr_mask)")


def _triplet(clip: Clip, pos: int, rng: np.random.Generator, cfg: FrameTaskConfig) -> dict:
    target = int(clip.target_idx[pos])
    ref = reference_for_target(target, clip.ref_idx, clip.timestamps)
    anchor_rgb, anchor_mask, anchor_masked = augment_anchor(
        clip.pcr_rgb[pos], clip.pcr_mask[pos], rng, cfg
    )
    K, c2w = cameras_to_tensor(clip.K[[target, ref]], clip.c2w[[target, ref]])
    if cfg.relative_to_reference:
        c2w = relative_to(c2w, c2w[1].clone())
    K, c2w = K.float(), c2w.float()
    return {
        "target": rgb_to_tensor(clip.rgb[target]),
        "anchor": rgb_to_tensor(anchor_rgb),
        "anchor_mask": torch.from_numpy(anchor_mask[None].astype(np.float32)),
        "reference": rgb_to_tensor(clip.rgb[ref]),
        "target_K": K[0],
        "target_c2w": c2w[0],
        "reference_K": K[1],
        "reference_c2w": c2w[1],
        "target_idx": torch.tensor(target, dtype=torch.int64),
        "reference_idx": torch.tensor(ref, dtype=torch.int64),
        "anchor_masked": anchor_masked,
        "key": clip.key,
    }


def frame_sample(
    clip: Clip, rng: np.random.Generator, cfg: FrameTaskConfig, target_pos: int | None = None
) -> dict:
    """One triplet for target ``clip.target_idx[target_pos]`` (random target when None).

    Returns: target / anchor / reference [3, H, W] float32 in [0, 1]; anchor_mask [1, H, W] float32
    (0/1); target_K, reference_K [3, 3] and target_c2w, reference_c2w [4, 4] float32;
    target_idx, reference_idx int64 scalars (clip frame indices); anchor_masked bool; key str.
    """
    _check(clip)
    if target_pos is None:
        target_pos = int(rng.integers(0, len(clip.target_idx)))
    if not 0 <= target_pos < len(clip.target_idx):
        raise ValueError(
            f"clip {clip.key!r}: target_pos {target_pos} out of range for "
            f"{len(clip.target_idx)} targets"
        )
    return _triplet(clip, target_pos, rng, cfg)


def frame_samples(clip: Clip, rng: np.random.Generator, cfg: FrameTaskConfig) -> list[dict]:
    """One triplet per target, in ``target_idx`` order (see ``frame_sample``)."""
    _check(clip)
    return [_triplet(clip, pos, rng, cfg) for pos in range(len(clip.target_idx))]
