"""RealEstate10K camera txt <-> `CameraSet`.

Line 1 is the source video URL; then one line per frame with 19 columns:

    timestamp_us fx fy cx cy 0 0 r00 r01 r02 t0 r10 r11 r12 t1 r20 r21 r22 t2

Intrinsics are normalised (fx, cx in units of the image width, fy, cy of the height) and the
3x4 row-major matrix is world-to-camera with OpenCV camera axes. Reading therefore needs the
image size: `fx_px = fx * W`, `fy_px = fy * H`, `cx_px = cx * W`, `cy_px = cy * H`.
Frame names are the timestamps (as strings); `timestamps` holds them as int64 microseconds and
`meta["url"]` the URL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datagen.camera_formats._util import make_K, reject_distortion, require_file, to_float, to_int
from datagen.camera_formats.camera_set import CameraSet, invert_rigid

N_COLUMNS = 19


def read_realestate10k(path: str | Path, image_size: tuple[int, int]) -> CameraSet:
    """Read a RealEstate10K camera file; image_size = (H, W) of the frames it describes."""
    path = require_file(path)
    if image_size is None or len(image_size) != 2:
        raise ValueError(f"{path}: RealEstate10K needs image_size=(H, W) to denormalise K")
    h, w = int(image_size[0]), int(image_size[1])
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    if not lines or not lines[0].strip():
        raise ValueError(f"{path}: empty file or missing URL on line 1")
    url = lines[0].strip()
    if len(url.split()) != 1:
        raise ValueError(f"{path}:1: expected the video URL alone on line 1, got {url[:80]!r}")
    stamps, Ks, w2cs = [], [], []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{lineno}"
        if len(parts) != N_COLUMNS:
            raise ValueError(
                f"{where}: expected {N_COLUMNS} columns "
                f"(timestamp fx fy cx cy 0 0 + 12 w2c), got {len(parts)}"
            )
        stamps.append(to_int(parts[0], where, "timestamp"))
        fx, fy, cx, cy = (
            to_float(v, where, n) for v, n in zip(parts[1:5], ("fx", "fy", "cx", "cy"))
        )
        Ks.append(make_K(fx * w, fy * h, cx * w, cy * h))
        T = np.eye(4)
        T[:3] = np.array(
            [to_float(v, where, f"w2c[{j}]") for j, v in enumerate(parts[7:])]
        ).reshape(3, 4)
        w2cs.append(T)
    if not stamps:
        raise ValueError(f"{path}: no camera lines after the URL")
    cams = CameraSet(
        names=[str(s) for s in stamps],
        K=np.stack(Ks),
        c2w=invert_rigid(np.stack(w2cs)),
        height=h,
        width=w,
        timestamps=np.array(stamps, dtype=np.int64),
        meta={"url": url},
    )
    return cams.validate(path)


def write_realestate10k(cameras: CameraSet, path: str | Path, url: str | None = None) -> None:
    """Write a RealEstate10K camera file. URL: `url`, else `meta["url"]`, else a placeholder.

    Timestamps: `cameras.timestamps`, else the names when they are integers, else 0..N-1.
    """
    cameras.validate()
    reject_distortion(cameras, "RealEstate10K")
    if np.abs(cameras.K[:, 0, 1]).max() > 1e-12:
        raise ValueError("RealEstate10K cannot store a skewed K")
    url = url or cameras.meta.get("url") or "unknown://video"
    if len(str(url).split()) != 1:
        raise ValueError(f"RealEstate10K URL must be one token without spaces, got {url!r}")
    if cameras.timestamps is not None:
        stamps = cameras.timestamps.tolist()
    elif all(n.lstrip("-").isdigit() for n in cameras.names):
        stamps = [int(n) for n in cameras.names]
    else:
        stamps = list(range(len(cameras)))
    h, w = cameras.height, cameras.width
    w2c = cameras.w2c
    lines = [str(url)]
    for i, K in enumerate(cameras.K):
        vals = [K[0, 0] / w, K[1, 1] / h, K[0, 2] / w, K[1, 2] / h, 0.0, 0.0]
        vals += w2c[i, :3, :4].reshape(-1).tolist()
        lines.append(f"{int(stamps[i])} " + " ".join(repr(float(v)) for v in vals))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
