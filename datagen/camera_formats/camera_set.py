"""`CameraSet`: the one in-memory camera container that every format converter produces/consumes.

Convention (DESIGN.md "One camera convention"): OpenCV camera axes (x right, y down, z forward),
`c2w` camera-to-world float64 [N, 4, 4], `K` float64 [N, 3, 3] in pixels. The principal point is
passed through from the files unchanged (COLMAP, nerfstudio, LLFF and RealEstate10K all put the
image origin at the top-left corner of the top-left pixel, i.e. pixel centres at +0.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ORTHONORMAL_ATOL = 1e-4  # file formats print rotations with ~7–9 significant digits


@dataclass
class CameraSet:
    """N pinhole cameras sharing one image size.

    names:       list[str] of length N (image file names, or timestamps for RealEstate10K)
    K:           float64 [N, 3, 3] intrinsics in pixels
    c2w:         float64 [N, 4, 4] camera-to-world, OpenCV camera axes
    height:      image height H in pixels
    width:       image width W in pixels
    timestamps:  optional int64 [N] (microseconds, RealEstate10K style)
    bounds:      optional float64 [N, 2] (near, far) scene depth bounds (LLFF)
    distortion:  optional list of N dicts `{"model": "OPENCV", "k1": ..., ...}` (empty dict = none)
    meta:        free-form format-specific extras (e.g. RealEstate10K video `url`)
    """

    names: list[str]
    K: np.ndarray
    c2w: np.ndarray
    height: int
    width: int
    timestamps: np.ndarray | None = None
    bounds: np.ndarray | None = None
    distortion: list[dict[str, Any]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        self.K = np.asarray(self.K, dtype=np.float64)
        self.c2w = np.asarray(self.c2w, dtype=np.float64)
        if self.timestamps is not None:
            self.timestamps = np.asarray(self.timestamps, dtype=np.int64)
        if self.bounds is not None:
            self.bounds = np.asarray(self.bounds, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def w2c(self) -> np.ndarray:
        """float64 [N, 4, 4] world-to-camera (rigid inverse of `c2w`)."""
        return invert_rigid(self.c2w)

    @property
    def has_distortion(self) -> bool:
        return self.distortion is not None and any(bool(d) for d in self.distortion)

    def validate(self, source: object | None = None) -> CameraSet:
        """Check shapes, finiteness, orthonormal rotations and positive focals; returns self.

        Raises ValueError; the message starts with `source` (e.g. the file read) when given.
        """
        prefix = f"{source}: " if source is not None else ""

        def fail(msg: str) -> None:
            raise ValueError(prefix + msg)

        n = len(self.names)
        if n == 0:
            fail("camera set is empty (no frames)")
        if self.K.shape != (n, 3, 3):
            fail(f"K has shape {self.K.shape}, expected ({n}, 3, 3) for {n} names")
        if self.c2w.shape != (n, 4, 4):
            fail(f"c2w has shape {self.c2w.shape}, expected ({n}, 4, 4) for {n} names")
        for what, arr in (("K", self.K), ("c2w", self.c2w)):
            bad = ~np.isfinite(arr).reshape(n, -1).all(axis=1)
            if bad.any():
                fail(f"{what} has non-finite values in frame {self._frame(int(np.argmax(bad)))}")
        for name, v in (("height", self.height), ("width", self.width)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
                fail(f"{name} must be a positive int, got {v!r}")
        fx, fy = self.K[:, 0, 0], self.K[:, 1, 1]
        bad = (fx <= 0) | (fy <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            fail(f"non-positive focal length (fx={fx[i]}, fy={fy[i]}) in frame {self._frame(i)}")
        bottom = np.abs(self.K[:, 2] - np.array([0.0, 0.0, 1.0])).max(axis=1)
        bad = (bottom > 1e-9) | (np.abs(self.K[:, 1, 0]) > 1e-9)
        if bad.any():
            i = int(np.argmax(bad))
            fail(f"K of frame {self._frame(i)} is not upper-triangular with K[2] = [0, 0, 1]")
        last = np.abs(self.c2w[:, 3] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1)
        if (last > 1e-9).any():
            fail(f"c2w last row is not [0, 0, 0, 1] in frame {self._frame(int(np.argmax(last)))}")
        R = self.c2w[:, :3, :3]
        err = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max(axis=(1, 2))
        if (err > ORTHONORMAL_ATOL).any():
            i = int(np.argmax(err))
            fail(
                f"rotation of frame {self._frame(i)} is not orthonormal "
                f"(max |R^T R - I| = {err[i]:.3g}): scaled or sheared pose?"
            )
        det = np.linalg.det(R)
        if (det < 0).any():
            fail(f"rotation of frame {self._frame(int(np.argmin(det)))} has det -1 (a reflection)")
        if self.timestamps is not None and self.timestamps.shape != (n,):
            fail(f"timestamps has shape {self.timestamps.shape}, expected ({n},)")
        if self.bounds is not None:
            if self.bounds.shape != (n, 2):
                fail(f"bounds has shape {self.bounds.shape}, expected ({n}, 2)")
            if not np.isfinite(self.bounds).all():
                fail("bounds has non-finite values")
            bad = self.bounds[:, 0] > self.bounds[:, 1]
            if bad.any():
                fail(f"near > far in bounds of frame {self._frame(int(np.argmax(bad)))}")
        if self.distortion is not None and len(self.distortion) != n:
            fail(f"distortion has {len(self.distortion)} entries, expected {n}")
        return self

    def _frame(self, i: int) -> str:
        return f"{i} ({self.names[i]!r})"


def invert_rigid(T: np.ndarray) -> np.ndarray:
    """Rigid inverse of [..., 4, 4] transforms: [R t] -> [R^T, -R^T t]."""
    T = np.asarray(T, dtype=np.float64)
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    Rt = np.swapaxes(R, -1, -2)
    out = np.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1.0
    return out
