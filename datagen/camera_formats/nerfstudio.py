"""nerfstudio / Blender (NeRF-synthetic) `transforms.json` <-> `CameraSet`.

`frames[i].transform_matrix` is camera-to-world with OpenGL camera axes (x right, y up, z back),
so `c2w_cv = c2w_gl @ diag(1, -1, -1, 1)` (negate the camera's y and z columns); the world frame
is taken as it is in the file (nerfstudio's `applied_transform`, if present, is kept in
`meta["applied_transform"]`, not undone).

Intrinsics: `fl_x, fl_y, cx, cy, w, h` at top level, or per frame (a frame's keys win). Blender's
form gives `camera_angle_x` (horizontal FOV, radians) instead: `fx = 0.5 * w / tan(0.5 * angle_x)`,
`fy` from `camera_angle_y` likewise or `= fx`, principal point at the image centre; Blender files
carry no `w`/`h`, so pass `image_size=(H, W)`. Distortion keys (`k1 k2 k3 k4 p1 p2`) are kept in
`CameraSet.distortion` with `model = camera_model` (default "OPENCV"). Frame names are `file_path`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from datagen.camera_formats._util import (
    FLIP_YZ,
    dump_json,
    load_json,
    make_K,
    to_float,
    to_int,
    to_matrix,
)
from datagen.camera_formats.camera_set import CameraSet

DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


def _intrinsics(
    frame: dict[str, Any], top: dict[str, Any], image_size: tuple[int, int] | None, where: str
) -> tuple[np.ndarray, int, int, dict[str, Any]]:
    def get(key: str) -> Any:
        return frame[key] if key in frame else top.get(key)

    if get("h") is not None and get("w") is not None:
        h, w = to_int(get("h"), where, "h"), to_int(get("w"), where, "w")
    elif image_size is not None:
        h, w = int(image_size[0]), int(image_size[1])
    else:
        raise ValueError(f"{where}: no image size ('w'/'h' keys); pass image_size=(H, W)")
    if get("fl_x") is not None:
        fx = to_float(get("fl_x"), where, "fl_x")
        fy = to_float(get("fl_y"), where, "fl_y") if get("fl_y") is not None else fx
    elif get("camera_angle_x") is not None:
        fx = 0.5 * w / math.tan(0.5 * to_float(get("camera_angle_x"), where, "camera_angle_x"))
        angle_y = get("camera_angle_y")
        fy = 0.5 * h / math.tan(0.5 * to_float(angle_y, where, "camera_angle_y")) if angle_y else fx
    else:
        raise ValueError(f"{where}: no focal length ('fl_x' or 'camera_angle_x')")
    cx = to_float(get("cx"), where, "cx") if get("cx") is not None else w / 2.0
    cy = to_float(get("cy"), where, "cy") if get("cy") is not None else h / 2.0
    dist = {k: to_float(get(k), where, k) for k in DISTORTION_KEYS if get(k) is not None}
    if dist:
        dist = {"model": str(get("camera_model") or "OPENCV"), **dist}
    return make_K(fx, fy, cx, cy), h, w, dist


def read_nerfstudio(path: str | Path, image_size: tuple[int, int] | None = None) -> CameraSet:
    """Read a `transforms.json` (file, or a directory holding one). image_size: (H, W) fallback."""
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'frames' list")
    if not data["frames"]:
        raise ValueError(f"{path}: 'frames' is empty")
    names, Ks, c2ws, sizes, dists = [], [], [], set(), []
    for i, frame in enumerate(data["frames"]):
        where = f"{path} frame {i}"
        if not isinstance(frame, dict):
            raise ValueError(f"{where}: expected an object, got {type(frame).__name__}")
        if "transform_matrix" not in frame:
            raise ValueError(f"{where}: missing 'transform_matrix'")
        tm = frame["transform_matrix"]
        shape = (3, 4) if isinstance(tm, list) and len(tm) == 3 else (4, 4)
        c2w_gl = np.eye(4)
        c2w_gl[: shape[0]] = to_matrix(tm, shape, where, "transform_matrix")
        K, h, w, dist = _intrinsics(frame, data, image_size, where)
        names.append(str(frame.get("file_path", f"{i:05d}")))
        Ks.append(K)
        c2ws.append(c2w_gl @ FLIP_YZ)
        sizes.add((h, w))
        dists.append(dist)
    if len(sizes) > 1:
        raise ValueError(f"{path}: frames have different image sizes {sorted(sizes)} (H, W)")
    ((h, w),) = sizes
    meta = {}
    if "applied_transform" in data:
        meta["applied_transform"] = data["applied_transform"]
    cams = CameraSet(
        names=names,
        K=np.stack(Ks),
        c2w=np.stack(c2ws),
        height=h,
        width=w,
        distortion=dists if any(dists) else None,
        meta=meta,
    )
    return cams.validate(path)


def write_nerfstudio(cameras: CameraSet, path: str | Path) -> None:
    """Write `transforms.json` (path is the file, or a directory to put it in).

    Intrinsics go at top level when all frames share them, otherwise per frame.
    """
    cameras.validate()
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / "transforms.json"
    if np.abs(cameras.K[:, 0, 1]).max() > 1e-12:
        raise ValueError("transforms.json cannot store a skewed K")

    def intr(i: int) -> dict[str, Any]:
        K = cameras.K[i]
        d = {"fl_x": K[0, 0], "fl_y": K[1, 1], "cx": K[0, 2], "cy": K[1, 2]}
        dist = cameras.distortion[i] if cameras.distortion else {}
        if dist:
            d["camera_model"] = dist.get("model", "OPENCV")
            bad = set(dist) - {"model", *DISTORTION_KEYS}
            if bad:
                raise ValueError(f"transforms.json cannot store distortion params {sorted(bad)}")
            d.update({k: float(v) for k, v in dist.items() if k != "model"})
        return {k: (float(v) if k != "camera_model" else v) for k, v in d.items()}

    per_frame = [intr(i) for i in range(len(cameras))]
    shared = all(p == per_frame[0] for p in per_frame)
    out: dict[str, Any] = {"w": cameras.width, "h": cameras.height}
    if shared:
        out.update(per_frame[0])
    out.update({k: v for k, v in cameras.meta.items() if k == "applied_transform"})
    c2w_gl = cameras.c2w @ FLIP_YZ
    out["frames"] = [
        {
            "file_path": name,
            "transform_matrix": c2w_gl[i].tolist(),
            **({} if shared else per_frame[i]),
        }
        for i, name in enumerate(cameras.names)
    ]
    dump_json(out, path)
