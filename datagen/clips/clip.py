"""The multi-view clip: F frames of one static scene, the unit every trainer reads."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from datagen.clips.provenance import SOURCE_KINDS, Provenance

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
# provenance.depth_estimator of a clip without depth (generated videos): depth is all 0 (invalid)
NO_DEPTH = "none"


class ClipValidationError(ValueError):
    """A clip violates the record's invariants; the message names the clip and the field."""


@dataclass
class Clip:
    """One clip (numpy arrays; OpenCV cameras, c2w, pixels; see docs/conventions.md).

    key: sample key, letters/digits/`_`/`-` only (no dots: webdataset splits keys at dots).
    rgb: [F, H, W, 3] uint8.
    K: [F, 3, 3] float32/float64 intrinsics in pixels.
    c2w: [F, 4, 4] float32/float64 camera-to-world.
    depth: [F, H, W] float32 z-depth, 0 where invalid. Every frame needs some valid depth,
        except in clips without depth (``provenance.depth_estimator == NO_DEPTH``, e.g.
        generated videos), whose depth is all 0.
    depth_conf: [F, H, W] float32 in [0, 1] or None (exact depth: conf 1 where depth > 0).
    normals: [F, H, W, 3] float32 world-space unit normals (0 where invalid) or None.
    ref_idx / target_idx: disjoint sorted frame indices (WorldFM: 4 references + 12 targets).
    pcr_rgb: [T, H, W, 3] uint8 point-cloud render at each target pose (T = len(target_idx)).
    pcr_mask: [T, H, W] bool validity of pcr_rgb.
    caption: clip caption; level_captions: one caption per zoom level (may be empty).
    latents: [C, t, h, w] float video latents of the clip or None; vae_id names the VAE.
    timestamps: [F] float seconds or None; frame_ids: source frame indices or None.
    provenance: source, estimators and their quality, scale factor.
    """

    key: str
    rgb: np.ndarray
    K: np.ndarray
    c2w: np.ndarray
    depth: np.ndarray
    provenance: Provenance
    depth_conf: np.ndarray | None = None
    normals: np.ndarray | None = None
    ref_idx: list[int] = field(default_factory=list)
    target_idx: list[int] = field(default_factory=list)
    pcr_rgb: np.ndarray | None = None
    pcr_mask: np.ndarray | None = None
    caption: str = ""
    level_captions: list[str] = field(default_factory=list)
    latents: np.ndarray | None = None
    vae_id: str | None = None
    timestamps: np.ndarray | None = None
    frame_ids: list[int] | None = None

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])

    def valid_depth(self) -> np.ndarray:
        """[F, H, W] bool: depth > 0 and (when present) confidence > 0."""
        valid = self.depth > 0
        if self.depth_conf is not None:
            valid &= self.depth_conf > 0
        return valid

    def validate(self, rotation_atol: float = 1e-4) -> Clip:
        """Check every invariant; raise ClipValidationError naming the problem. Returns self."""
        _validate(self, rotation_atol)
        return self


def _fail(clip_key: str, message: str) -> None:
    raise ClipValidationError(f"clip {clip_key!r}: {message}")


def _check_array(key, name, array, shape, kinds) -> None:
    if not isinstance(array, np.ndarray):
        _fail(key, f"{name} must be a numpy array, got {type(array).__name__}")
    if array.dtype.kind not in kinds:
        _fail(key, f"{name} has dtype {array.dtype}, expected kind {kinds!r}")
    expected = tuple(shape)
    if array.shape != expected:
        _fail(key, f"{name} has shape {list(array.shape)}, expected {list(expected)}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        _fail(key, f"{name} contains NaN or inf")


def _check_indices(key: str, name: str, indices, num_frames: int) -> None:
    values = list(indices)
    if any(not isinstance(i, int | np.integer) for i in values):
        _fail(key, f"{name} must hold integers, got {values}")
    if values != sorted(set(values)):
        _fail(key, f"{name} must be sorted and unique, got {values}")
    if values and (values[0] < 0 or values[-1] >= num_frames):
        _fail(key, f"{name} {values} out of range for {num_frames} frames")


def _validate(clip: Clip, rotation_atol: float) -> None:
    key = clip.key
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        _fail(key, "key must be non-empty and use only letters, digits, '_' and '-' (no dots)")
    if not isinstance(clip.rgb, np.ndarray) or clip.rgb.ndim != 4 or clip.rgb.shape[-1] != 3:
        _fail(key, f"rgb must be [F, H, W, 3], got {getattr(clip.rgb, 'shape', None)}")
    if clip.rgb.dtype != np.uint8:
        _fail(key, f"rgb must be uint8, got {clip.rgb.dtype}")
    num_frames, height, width = clip.rgb.shape[:3]
    if num_frames < 1 or height < 1 or width < 1:
        _fail(key, f"rgb is empty: shape {list(clip.rgb.shape)}")
    _check_array(key, "K", clip.K, (num_frames, 3, 3), "f")
    _check_array(key, "c2w", clip.c2w, (num_frames, 4, 4), "f")
    _check_array(key, "depth", clip.depth, (num_frames, height, width), "f")

    if not np.allclose(clip.K[:, 2], [0.0, 0.0, 1.0]) or not np.allclose(clip.K[:, 1, 0], 0.0):
        _fail(key, "K must have last row [0, 0, 1] and K[1, 0] = 0")
    if (clip.K[:, 0, 0] <= 0).any() or (clip.K[:, 1, 1] <= 0).any():
        _fail(key, "K must have positive focal lengths")
    if not np.allclose(clip.c2w[:, 3], [0.0, 0.0, 0.0, 1.0]):
        _fail(key, "c2w must have last row [0, 0, 0, 1]")
    rotations = clip.c2w[:, :3, :3].astype(np.float64)
    gram = rotations @ rotations.transpose(0, 2, 1)
    off = np.abs(gram - np.eye(3)).max(axis=(1, 2))
    if (off > rotation_atol).any():
        bad = int(np.argmax(off))
        _fail(key, f"c2w[{bad}] rotation is not orthonormal (|RRᵀ - I| = {off[bad]:.2e})")
    if (np.linalg.det(rotations) < 0).any():
        _fail(key, "c2w rotation has determinant -1 (a reflection)")

    if (clip.depth < 0).any():
        _fail(key, "depth must be >= 0 (0 marks invalid pixels)")
    if clip.depth_conf is not None:
        _check_array(key, "depth_conf", clip.depth_conf, (num_frames, height, width), "f")
        if (clip.depth_conf < 0).any() or (clip.depth_conf > 1).any():
            _fail(key, "depth_conf must lie in [0, 1]")
    empty = ~clip.valid_depth().reshape(num_frames, -1).any(axis=1)
    if getattr(clip.provenance, "depth_estimator", None) == NO_DEPTH:
        if (clip.depth != 0).any():
            _fail(key, f"depth_estimator {NO_DEPTH!r} (no depth) but depth has non-zero values")
    elif empty.any():
        _fail(key, f"frames {np.flatnonzero(empty).tolist()} have no valid (positive) depth")
    if clip.normals is not None:
        _check_array(key, "normals", clip.normals, (num_frames, height, width, 3), "f")
        norms = np.linalg.norm(clip.normals, axis=-1)
        if (np.abs(norms[norms > 0] - 1) > 1e-2).any():
            _fail(key, "normals must be unit length (or 0 where invalid)")

    _check_indices(key, "ref_idx", clip.ref_idx, num_frames)
    _check_indices(key, "target_idx", clip.target_idx, num_frames)
    if set(clip.ref_idx) & set(clip.target_idx):
        _fail(key, "ref_idx and target_idx overlap")
    num_targets = len(clip.target_idx)
    if (clip.pcr_rgb is None) != (clip.pcr_mask is None):
        _fail(key, "pcr_rgb and pcr_mask come together")
    if clip.pcr_rgb is not None:
        _check_array(key, "pcr_rgb", clip.pcr_rgb, (num_targets, height, width, 3), "u")
        _check_array(key, "pcr_mask", clip.pcr_mask, (num_targets, height, width), "b")

    if not isinstance(clip.caption, str) or not all(
        isinstance(c, str) for c in clip.level_captions
    ):
        _fail(key, "caption and level_captions must be strings")
    if clip.latents is not None:
        if not isinstance(clip.latents, np.ndarray) or clip.latents.ndim != 4:
            _fail(key, "latents must be a [C, t, h, w] array")
        _check_array(key, "latents", clip.latents, clip.latents.shape, "f")
        if not clip.vae_id:
            _fail(key, "latents need the vae_id of the VAE that made them")
    if clip.timestamps is not None:
        _check_array(key, "timestamps", clip.timestamps, (num_frames,), "f")
    if clip.frame_ids is not None and len(clip.frame_ids) != num_frames:
        _fail(key, f"frame_ids has {len(clip.frame_ids)} entries for {num_frames} frames")
    if not isinstance(clip.provenance, Provenance):
        _fail(key, "provenance must be a Provenance record")
    if clip.provenance.source_kind not in SOURCE_KINDS:
        _fail(key, f"provenance.source_kind must be one of {SOURCE_KINDS}")
    if not clip.provenance.scale_factor > 0:
        _fail(key, "provenance.scale_factor must be positive")
