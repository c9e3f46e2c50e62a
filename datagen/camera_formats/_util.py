"""Small shared helpers for the camera-format converters (file checks, JSON, quaternions)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

# OpenCV camera (x right, y down, z forward) <-> OpenGL camera (x right, y up, z back):
# c2w_gl = c2w_cv @ FLIP_YZ and back again (FLIP_YZ is its own inverse).
FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def require_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        what = "is a directory, expected a file" if path.is_dir() else "file not found"
        raise FileNotFoundError(f"{path}: {what}")
    return path


def load_json(path: str | Path) -> Any:
    path = require_file(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON ({e})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e})") from None


def dump_json(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def to_float(token: Any, where: str, what: str) -> float:
    if isinstance(token, bool):
        raise ValueError(f"{where}: {what} must be a number, got {token!r}")
    try:
        return float(token)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {what} must be a number, got {token!r}") from None


def to_int(token: Any, where: str, what: str) -> int:
    v = to_float(token, where, what)
    if not math.isfinite(v) or v != int(v):
        raise ValueError(f"{where}: {what} must be an integer, got {token!r}")
    return int(v)


def to_matrix(value: Any, shape: tuple[int, ...], where: str, what: str) -> np.ndarray:
    """Nested lists -> float64 array of `shape`, with a clear error otherwise."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {what} must be a {shape} array of numbers") from None
    if arr.shape != shape:
        raise ValueError(f"{where}: {what} has shape {arr.shape}, expected {shape}")
    return arr


def make_K(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def reject_distortion(cameras: Any, fmt: str) -> None:
    if cameras.has_distortion:
        raise ValueError(
            f"{fmt} cannot store lens distortion; undistort the images first "
            "or clear `cameras.distortion`"
        )


def quat_wxyz_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) -> [3, 3] rotation matrix (Hamilton convention, as COLMAP)."""
    w, x, y, z = (float(v) for v in q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotmat_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """[3, 3] rotation matrix -> unit quaternion (w, x, y, z) with w >= 0 (Shepperd's method)."""
    R = np.asarray(R, dtype=np.float64)
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    q = np.asarray(q) / np.linalg.norm(q)
    return -q if q[0] < 0 else q
