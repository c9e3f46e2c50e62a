"""LLFF `poses_bounds.npy` <-> `CameraSet`.

The file is float [N, 17]: per frame a row-major 3x5 matrix `[c0 c1 c2 | t | hwf]` followed by
(near, far). `t` is the camera centre in world, `hwf = (H, W, focal)` with the principal point at
the image centre. The rotation columns are the camera's axes in world in LLFF's
[down, right, backwards] order. NeRF's loader turns them into OpenGL [right, up, back] with
`[c1, -c0, c2]`; OpenGL -> OpenCV negates y and z, so

    OpenCV c2w rotation = [c1, c0, -c2]        (and back: [c0 c1 c2] = [y_cv, x_cv, -z_cv]).

Frame names: sorted image files of an `images/` directory beside the file when their count
matches N, else zero-padded indices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datagen.camera_formats._util import make_K, reject_distortion, require_file
from datagen.camera_formats.camera_set import CameraSet

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".exr", ".bmp", ".tif", ".tiff", ".webp"}


def _default_names(path: Path, n: int) -> list[str]:
    images = path.parent / "images"
    if images.is_dir():
        files = sorted(p.name for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) == n:
            return files
    return [f"{i:05d}" for i in range(n)]


def read_llff(path: str | Path, names: list[str] | None = None) -> CameraSet:
    """Read `poses_bounds.npy` (file, or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "poses_bounds.npy"
    require_file(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy file ({e})") from None
    if arr.ndim != 2 or arr.shape[1] != 17 or arr.shape[0] == 0:
        raise ValueError(f"{path}: expected an [N, 17] array, got shape {arr.shape}")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: expected a numeric array, got dtype {arr.dtype}") from None
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: contains non-finite values")
    n = arr.shape[0]
    m = arr[:, :15].reshape(n, 3, 5)
    hwf = m[:, :, 4]
    if np.abs(hwf[:, :2] - hwf[0, :2]).max() > 0:
        raise ValueError(f"{path}: frames have different image sizes (H, W); not supported")
    h, w = hwf[0, 0], hwf[0, 1]
    if h != round(h) or w != round(w) or h <= 0 or w <= 0:
        raise ValueError(f"{path}: image size (H, W) = ({h}, {w}) is not positive integers")
    c0, c1, c2 = m[:, :, 0], m[:, :, 1], m[:, :, 2]
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = np.stack([c1, c0, -c2], axis=-1)
    c2w[:, :3, 3] = m[:, :, 3]
    K = np.stack([make_K(f, f, w / 2.0, h / 2.0) for f in hwf[:, 2]])
    if names is not None and len(names) != n:
        raise ValueError(f"{path}: {n} poses but {len(names)} names given")
    cams = CameraSet(
        names=list(names) if names is not None else _default_names(path, n),
        K=K,
        c2w=c2w,
        height=int(h),
        width=int(w),
        bounds=arr[:, 15:17].copy(),
    )
    return cams.validate(path)


def write_llff(cameras: CameraSet, path: str | Path) -> None:
    """Write `poses_bounds.npy` (path is the file, or a directory to put it in).

    LLFF holds one focal and a centred principal point per frame, and needs `cameras.bounds`.
    """
    cameras.validate()
    reject_distortion(cameras, "LLFF poses_bounds.npy")
    path = Path(path)
    if path.is_dir() or path.suffix != ".npy":
        path = path / "poses_bounds.npy"
    if cameras.bounds is None:
        raise ValueError("LLFF poses_bounds.npy needs near/far bounds: set cameras.bounds [N, 2]")
    K, h, w = cameras.K, cameras.height, cameras.width
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    if not np.allclose(fx, fy, rtol=1e-9, atol=0):
        raise ValueError("LLFF stores one focal length per frame; got fx != fy")
    if (
        not np.allclose(K[:, 0, 2], w / 2.0, rtol=0, atol=1e-9)
        or not np.allclose(K[:, 1, 2], h / 2.0, rtol=0, atol=1e-9)
        or np.abs(K[:, 0, 1]).max() > 1e-12
    ):
        raise ValueError("LLFF assumes the principal point at the image centre (W/2, H/2), no skew")
    R = cameras.c2w[:, :3, :3]
    n = len(cameras)
    m = np.empty((n, 3, 5))
    m[:, :, 0] = R[:, :, 1]  # down  = +y_cv
    m[:, :, 1] = R[:, :, 0]  # right = +x_cv
    m[:, :, 2] = -R[:, :, 2]  # back = -z_cv
    m[:, :, 3] = cameras.c2w[:, :3, 3]
    m[:, :, 4] = np.stack([np.full(n, float(h)), np.full(n, float(w)), fx], axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.concatenate([m.reshape(n, 15), cameras.bounds], axis=1))
