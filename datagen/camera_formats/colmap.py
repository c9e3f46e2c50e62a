"""COLMAP sparse models <-> `CameraSet`.

COLMAP stores world-to-camera poses (`QW QX QY QZ TX TY TZ`, Hamilton quaternion, OpenCV camera
axes), so `c2w = inverse([R(q) | t])`. Frames are ordered by IMAGE_ID.

Text models (`cameras.txt`, `images.txt`) are parsed/written here; binary models (`cameras.bin`,
`images.bin`, ...) go through pycolmap 4.x, imported lazily inside the binary functions only and
always after PIL (pycolmap's bundled zlib loaded before PIL's makes PIL's PNG writer abort).

Camera models read: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV. K comes
from (fx, fy, cx, cy); the remaining parameters are recorded in `CameraSet.distortion` as
`{"model": NAME, "k1": ..., ...}` and written back with the same model. Undistorted frames are
written as PINHOLE, one camera per image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from datagen.camera_formats._util import (
    make_K,
    quat_wxyz_to_rotmat,
    require_file,
    rotmat_to_quat_wxyz,
    to_float,
    to_int,
)
from datagen.camera_formats.camera_set import CameraSet, invert_rigid

# model name -> parameter names, in COLMAP's order
CAMERA_MODELS: dict[str, tuple[str, ...]] = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "FULL_OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"),
}
_INTRINSIC_NAMES = {"f", "fx", "fy", "cx", "cy"}


# ----------------------------------------------------------------------------------- shared


def _intrinsics_from_params(
    model: str, params: list[float], where: str
) -> tuple[np.ndarray, dict[str, Any]]:
    names = CAMERA_MODELS.get(model)
    if names is None:
        raise ValueError(
            f"{where}: unsupported camera model {model!r} (supported: {', '.join(CAMERA_MODELS)})"
        )
    if len(params) != len(names):
        raise ValueError(
            f"{where}: camera model {model} takes {len(names)} params "
            f"({' '.join(names)}), got {len(params)}"
        )
    p = dict(zip(names, params))
    fx = p.get("fx", p.get("f"))
    fy = p.get("fy", p.get("f"))
    dist = {k: float(v) for k, v in p.items() if k not in _INTRINSIC_NAMES}
    return make_K(fx, fy, p["cx"], p["cy"]), ({"model": model, **dist} if dist else {})


def _params_from_intrinsics(K: np.ndarray, dist: dict[str, Any], frame: str) -> tuple[str, list]:
    if abs(K[0, 1]) > 1e-12:
        raise ValueError(f"COLMAP cannot store a skewed K (frame {frame})")
    model = dist.get("model", "PINHOLE") if dist else "PINHOLE"
    names = CAMERA_MODELS.get(model)
    if names is None:
        raise ValueError(f"frame {frame}: cannot write unknown COLMAP camera model {model!r}")
    values = {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2], **dist}
    if "f" in names:
        if abs(K[0, 0] - K[1, 1]) > 1e-9 * abs(K[0, 0]):
            raise ValueError(
                f"frame {frame}: model {model} needs fx == fy, got {K[0, 0]}, {K[1, 1]}"
            )
        values["f"] = K[0, 0]
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueError(f"frame {frame}: distortion for {model} lacks {missing}")
    return model, [float(values[n]) for n in names]


def _assemble(
    rows: list[tuple[int, str, np.ndarray, int]],
    cameras: dict[int, tuple[np.ndarray, dict[str, Any], int, int]],
    source: Path,
) -> CameraSet:
    """rows: (image_id, name, w2c [4, 4], camera_id); cameras: id -> (K, dist, width, height)."""
    if not rows:
        raise ValueError(f"{source}: no images in the model")
    rows = sorted(rows, key=lambda r: r[0])
    sizes = {(cameras[r[3]][2], cameras[r[3]][3]) for r in rows}
    if len(sizes) > 1:
        raise ValueError(
            f"{source}: images have different sizes {sorted(sizes)} (W, H); "
            "CameraSet holds one image size per set"
        )
    ((width, height),) = sizes
    dists = [cameras[r[3]][1] for r in rows]
    cams = CameraSet(
        names=[r[1] for r in rows],
        K=np.stack([cameras[r[3]][0] for r in rows]),
        c2w=invert_rigid(np.stack([r[2] for r in rows])),
        height=height,
        width=width,
        distortion=dists if any(dists) else None,
    )
    return cams.validate(source)


def _w2c(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


# ------------------------------------------------------------------------------------- text


def _data_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, raw line) for every line of the file."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(
            f"{path}: not a text file (binary model? use read_colmap_binary)"
        ) from None
    return list(enumerate(text.splitlines(), start=1))


def _read_cameras_txt(path: Path) -> dict[int, tuple[np.ndarray, dict[str, Any], int, int]]:
    cameras = {}
    for lineno, line in _data_lines(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        parts = line.split()
        if len(parts) < 5:
            raise ValueError(
                f"{where}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...', got {len(parts)} columns"
            )
        cam_id = to_int(parts[0], where, "CAMERA_ID")
        width = to_int(parts[2], where, "WIDTH")
        height = to_int(parts[3], where, "HEIGHT")
        params = [to_float(p, where, f"param {i}") for i, p in enumerate(parts[4:])]
        K, dist = _intrinsics_from_params(parts[1], params, where)
        if cam_id in cameras:
            raise ValueError(f"{where}: duplicate CAMERA_ID {cam_id}")
        cameras[cam_id] = (K, dist, width, height)
    return cameras


def _read_images_txt(path: Path, camera_ids: set[int]) -> list[tuple[int, str, np.ndarray, int]]:
    rows = []
    lines = _data_lines(path)
    i = 0
    while i < len(lines):
        lineno, line = lines[i]
        i += 1
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        i += 1  # the POINTS2D line that follows every image line (may be empty)
        where = f"{path}:{lineno}"
        parts = line.split()
        if len(parts) != 10:
            raise ValueError(
                f"{where}: expected 10 columns 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', "
                f"got {len(parts)}"
            )
        image_id = to_int(parts[0], where, "IMAGE_ID")
        q = np.array([to_float(v, where, n) for v, n in zip(parts[1:5], ("QW", "QX", "QY", "QZ"))])
        t = np.array([to_float(v, where, n) for v, n in zip(parts[5:8], ("TX", "TY", "TZ"))])
        cam_id = to_int(parts[8], where, "CAMERA_ID")
        norm = float(np.linalg.norm(q))
        if not np.isfinite(norm) or abs(norm - 1.0) > 1e-3:
            raise ValueError(f"{where}: quaternion norm is {norm}, expected a unit quaternion")
        if cam_id not in camera_ids:
            raise ValueError(f"{where}: CAMERA_ID {cam_id} is not in cameras.txt")
        if not np.isfinite(t).all():
            raise ValueError(f"{where}: non-finite translation")
        rows.append((image_id, parts[9], _w2c(quat_wxyz_to_rotmat(q / norm), t), cam_id))
    ids = [r[0] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate IMAGE_ID")
    return rows


def read_colmap_text(path: str | Path) -> CameraSet:
    """Read `cameras.txt` + `images.txt` from the model directory `path`."""
    path = Path(path)
    cam_file = require_file(path / "cameras.txt")
    img_file = require_file(path / "images.txt")
    cameras = _read_cameras_txt(cam_file)
    rows = _read_images_txt(img_file, set(cameras))
    return _assemble(rows, cameras, img_file)


def write_colmap_text(cameras: CameraSet, path: str | Path) -> None:
    """Write `cameras.txt`, `images.txt` and an empty `points3D.txt` into directory `path`."""
    cameras.validate()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cam_lines = [
        "# Camera list with one line of data per camera:",
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
        f"# Number of cameras: {len(cameras)}",
    ]
    img_lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
        f"# Number of images: {len(cameras)}, mean observations per image: 0",
    ]
    w2c = cameras.w2c
    for i, name in enumerate(cameras.names):
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"COLMAP image names cannot be empty or contain whitespace: {name!r}")
        dist = cameras.distortion[i] if cameras.distortion else {}
        model, params = _params_from_intrinsics(cameras.K[i], dist, repr(name))
        cam_lines.append(
            f"{i + 1} {model} {cameras.width} {cameras.height} " + " ".join(map(repr, params))
        )
        q = rotmat_to_quat_wxyz(w2c[i, :3, :3])
        vals = [*q.tolist(), *w2c[i, :3, 3].tolist()]
        img_lines.append(f"{i + 1} " + " ".join(map(repr, vals)) + f" {i + 1} {name}")
        img_lines.append("")
    (path / "cameras.txt").write_text("\n".join(cam_lines) + "\n")
    (path / "images.txt").write_text("\n".join(img_lines) + "\n")
    (path / "points3D.txt").write_text(
        "# 3D point list with one line of data per point:\n"
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
        "# Number of points: 0, mean track length: 0\n"
    )


# ----------------------------------------------------------------------------------- binary


def _import_pycolmap():
    """pycolmap, imported after PIL: loading pycolmap first makes PIL's PNG save abort (zlib)."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        pass
    import pycolmap

    return pycolmap


def read_colmap_binary(path: str | Path) -> CameraSet:
    """Read a binary model (`cameras.bin`, `images.bin`, ...) in directory `path` via pycolmap."""
    path = Path(path)
    for name in ("cameras.bin", "images.bin"):
        require_file(path / name)
    pycolmap = _import_pycolmap()

    rec = pycolmap.Reconstruction()
    try:
        rec.read_binary(str(path))
    except Exception as e:  # pycolmap raises ValueError/RuntimeError with its own C++ message
        raise ValueError(f"{path}: cannot read COLMAP binary model ({e})") from None
    cameras = {}
    for cam_id, cam in rec.cameras.items():
        where = f"{path / 'cameras.bin'} camera {cam_id}"
        K, dist = _intrinsics_from_params(cam.model.name, list(map(float, cam.params)), where)
        cameras[cam_id] = (K, dist, int(cam.width), int(cam.height))
    rows = []
    for image_id, image in rec.images.items():
        if not image.has_pose:
            continue
        w2c = np.eye(4)
        w2c[:3] = image.cam_from_world().matrix()
        rows.append((image_id, image.name, w2c, image.camera_id))
    return _assemble(rows, cameras, path / "images.bin")


def write_colmap_binary(cameras: CameraSet, path: str | Path) -> None:
    """Write a binary model into directory `path` via pycolmap (one camera and rig per image)."""
    cameras.validate()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pycolmap = _import_pycolmap()

    rec = pycolmap.Reconstruction()
    w2c = cameras.w2c
    for i, name in enumerate(cameras.names):
        dist = cameras.distortion[i] if cameras.distortion else {}
        model, params = _params_from_intrinsics(cameras.K[i], dist, repr(name))
        cam = pycolmap.Camera(
            camera_id=i + 1, model=model, width=cameras.width, height=cameras.height, params=params
        )
        rec.add_camera_with_trivial_rig(cam)
        image = pycolmap.Image(name=name, camera_id=i + 1, image_id=i + 1)
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(w2c[i, :3, :3]), w2c[i, :3, 3].copy())
        rec.add_image_with_trivial_frame(image, pose)
    rec.write_binary(str(path))


# ------------------------------------------------------------------------------------ either


def read_colmap(path: str | Path) -> CameraSet:
    """Read a COLMAP model directory (binary preferred when both exist, as COLMAP does).

    `path` may also be one of the model files (`cameras.txt`, `images.bin`, ...).
    """
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: COLMAP model directory not found")
    if (path / "cameras.bin").is_file() or (path / "images.bin").is_file():
        return read_colmap_binary(path)
    if (path / "cameras.txt").is_file() or (path / "images.txt").is_file():
        return read_colmap_text(path)
    raise FileNotFoundError(f"{path}: no cameras.bin/images.bin or cameras.txt/images.txt")


def write_colmap(cameras: CameraSet, path: str | Path, binary: bool = False) -> None:
    """Write a COLMAP model into directory `path` (text unless `binary`)."""
    (write_colmap_binary if binary else write_colmap_text)(cameras, path)
