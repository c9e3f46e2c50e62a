"""WorldFM `meta.json` <-> `CameraSet`.

The InSpatio-WorldFM paper only says each view has intrinsics K and extrinsics E; it fixes no
file layout, so this platform defines it (OpenCV camera axes, pixels, camera-to-world):

    {
      "convention": "opencv_c2w",          # optional; any other value is rejected
      "width": 128, "height": 96,          # optional defaults for frames without their own
      "frames": [
        {
          "file_path": "images/000.png",   # frame name
          "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
          "c2w": [[r00, r01, r02, tx], [r10, r11, r12, ty], [r20, r21, r22, tz], [0, 0, 0, 1]],
          "width": 128, "height": 96,
          "timestamp_us": 0,               # optional (all frames or none)
          "near": 0.5, "far": 10.0         # optional (all frames or none)
        }
      ]
    }
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from datagen.camera_formats._util import (
    dump_json,
    load_json,
    reject_distortion,
    to_float,
    to_int,
    to_matrix,
)
from datagen.camera_formats.camera_set import CameraSet

CONVENTION = "opencv_c2w"


def read_worldfm(path: str | Path) -> CameraSet:
    """Read a WorldFM `meta.json` (file, or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "meta.json"
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'frames' list")
    if data.get("convention", CONVENTION) != CONVENTION:
        raise ValueError(f"{path}: convention {data['convention']!r}, expected {CONVENTION!r}")
    frames = data["frames"]
    if not frames:
        raise ValueError(f"{path}: 'frames' is empty")
    names, Ks, c2ws, sizes, stamps, bounds = [], [], [], set(), [], []
    for i, fr in enumerate(frames):
        where = f"{path} frame {i}"
        if not isinstance(fr, dict):
            raise ValueError(f"{where}: expected an object, got {type(fr).__name__}")
        for key in ("file_path", "K", "c2w"):
            if key not in fr:
                raise ValueError(f"{where}: missing {key!r}")
        h, w = fr.get("height", data.get("height")), fr.get("width", data.get("width"))
        if h is None or w is None:
            raise ValueError(f"{where}: missing 'width'/'height'")
        sizes.add((to_int(h, where, "height"), to_int(w, where, "width")))
        names.append(str(fr["file_path"]))
        Ks.append(to_matrix(fr["K"], (3, 3), where, "K"))
        c2ws.append(to_matrix(fr["c2w"], (4, 4), where, "c2w"))
        if "timestamp_us" in fr:
            stamps.append(to_int(fr["timestamp_us"], where, "timestamp_us"))
        if "near" in fr or "far" in fr:
            bounds.append([to_float(fr.get(k), where, k) for k in ("near", "far")])
    for what, got in (("timestamp_us", stamps), ("near/far", bounds)):
        if got and len(got) != len(frames):
            raise ValueError(f"{path}: {what} given for {len(got)} of {len(frames)} frames")
    if len(sizes) > 1:
        raise ValueError(f"{path}: frames have different image sizes {sorted(sizes)} (H, W)")
    ((h, w),) = sizes
    cams = CameraSet(
        names=names,
        K=np.stack(Ks),
        c2w=np.stack(c2ws),
        height=h,
        width=w,
        timestamps=np.array(stamps, dtype=np.int64) if stamps else None,
        bounds=np.array(bounds) if bounds else None,
    )
    return cams.validate(path)


def write_worldfm(cameras: CameraSet, path: str | Path) -> None:
    """Write `meta.json` (path is the file, or a directory to put it in)."""
    cameras.validate()
    reject_distortion(cameras, "WorldFM meta.json")
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / "meta.json"
    frames: list[dict[str, Any]] = []
    for i, name in enumerate(cameras.names):
        fr: dict[str, Any] = {
            "file_path": name,
            "K": cameras.K[i].tolist(),
            "c2w": cameras.c2w[i].tolist(),
            "width": cameras.width,
            "height": cameras.height,
        }
        if cameras.timestamps is not None:
            fr["timestamp_us"] = int(cameras.timestamps[i])
        if cameras.bounds is not None:
            fr["near"], fr["far"] = (float(v) for v in cameras.bounds[i])
        frames.append(fr)
    dump_json({"convention": CONVENTION, "frames": frames}, path)
