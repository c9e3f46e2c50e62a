"""Camera file formats at the data edge -> `CameraSet` (OpenCV axes, c2w, K in pixels).

One module per format, each with `read_*(path) -> CameraSet` and `write_*(cameras, path)`;
`read_cameras` picks the reader from the path.
"""

from __future__ import annotations

from pathlib import Path

from datagen.camera_formats._util import load_json
from datagen.camera_formats.camera_set import CameraSet, invert_rigid
from datagen.camera_formats.colmap import (
    read_colmap,
    read_colmap_binary,
    read_colmap_text,
    write_colmap,
    write_colmap_binary,
    write_colmap_text,
)
from datagen.camera_formats.llff import read_llff, write_llff
from datagen.camera_formats.nerfstudio import read_nerfstudio, write_nerfstudio
from datagen.camera_formats.realestate10k import read_realestate10k, write_realestate10k
from datagen.camera_formats.worldfm import read_worldfm, write_worldfm

__all__ = [
    "FORMATS",
    "CameraSet",
    "detect_format",
    "invert_rigid",
    "read_cameras",
    "read_colmap",
    "read_colmap_binary",
    "read_colmap_text",
    "read_llff",
    "read_nerfstudio",
    "read_realestate10k",
    "read_worldfm",
    "write_cameras",
    "write_colmap",
    "write_colmap_binary",
    "write_colmap_text",
    "write_llff",
    "write_nerfstudio",
    "write_realestate10k",
    "write_worldfm",
]

FORMATS = ("colmap", "nerfstudio", "llff", "realestate10k", "worldfm")
_ALIASES = {"blender": "nerfstudio", "re10k": "realestate10k", "meta": "worldfm"}
_COLMAP_FILES = ("cameras.bin", "images.bin", "cameras.txt", "images.txt")
_DIR_MARKERS = {
    "transforms.json": "nerfstudio",
    "poses_bounds.npy": "llff",
    "meta.json": "worldfm",
}


def _normalise_format(fmt: str) -> str:
    key = _ALIASES.get(fmt.lower(), fmt.lower())
    if key not in FORMATS:
        raise ValueError(f"unknown camera format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return key


def _is_re10k(path: Path) -> bool:
    try:
        with path.open() as f:
            first, second = f.readline().split(), f.readline().split()
    except (OSError, UnicodeDecodeError):
        return False
    return len(first) == 1 and ("://" in first[0] or len(second) == 19)


def detect_format(path: str | Path) -> str:
    """Name of the camera format at `path` (a file or a directory), or a ValueError saying why not."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_dir():
        found = []
        if any((path / f).is_file() for f in _COLMAP_FILES):
            found.append("colmap")
        found += [fmt for name, fmt in _DIR_MARKERS.items() if (path / name).is_file()]
        if len(found) == 1:
            return found[0]
        if found:
            raise ValueError(
                f"{path}: ambiguous, holds {' and '.join(found)} cameras; pass format="
            )
        raise ValueError(
            f"{path}: no camera file found (looked for {', '.join(_COLMAP_FILES)}, "
            f"{', '.join(_DIR_MARKERS)})"
        )
    name, suffix = path.name.lower(), path.suffix.lower()
    if name in _COLMAP_FILES:
        return "colmap"
    if suffix == ".npy":
        return "llff"
    if suffix == ".json":
        data = load_json(path)
        frames = data.get("frames") if isinstance(data, dict) else None
        first = frames[0] if isinstance(frames, list) and frames else None
        if isinstance(first, dict) and "transform_matrix" in first:
            return "nerfstudio"
        if isinstance(first, dict) and "c2w" in first:
            return "worldfm"
        if name in _DIR_MARKERS:
            return _DIR_MARKERS[name]
    if suffix == ".txt" and _is_re10k(path):
        return "realestate10k"
    raise ValueError(
        f"{path}: cannot tell the camera format; pass format= (one of {', '.join(FORMATS)})"
    )


def read_cameras(
    path: str | Path, format: str | None = None, image_size: tuple[int, int] | None = None
) -> CameraSet:
    """Read cameras from `path`, auto-detecting the format unless `format` is given.

    image_size (H, W) is required for RealEstate10K and for Blender files without `w`/`h`.
    """
    fmt = _normalise_format(format) if format else detect_format(path)
    if fmt == "colmap":
        return read_colmap(path)
    if fmt == "nerfstudio":
        return read_nerfstudio(path, image_size=image_size)
    if fmt == "llff":
        return read_llff(path)
    if fmt == "realestate10k":
        if image_size is None:
            raise ValueError(f"{path}: RealEstate10K cameras need image_size=(H, W)")
        return read_realestate10k(path, image_size)
    return read_worldfm(path)


def write_cameras(cameras: CameraSet, path: str | Path, format: str) -> None:
    """Write `cameras` to `path` in `format` (COLMAP: text model)."""
    writer = {
        "colmap": write_colmap,
        "nerfstudio": write_nerfstudio,
        "llff": write_llff,
        "realestate10k": write_realestate10k,
        "worldfm": write_worldfm,
    }[_normalise_format(format)]
    writer(cameras, path)
