"""Image-based inputs -> `FrameSource`: plain image folders and dataset layouts with poses.

Layouts (cameras converted by `datagen.camera_formats`, reordered to follow the frames):
  nerfstudio / DL3DV  folder with `transforms.json`; images at each frame's `file_path`
  COLMAP              model dir (`cameras.*`, `images.*`) + images dir; registered images only
  LLFF                folder with `poses_bounds.npy` + `images/` (poses follow sorted file names)
  RealEstate10K       `<id>.txt` + a frames folder whose files are named `<timestamp_us>.<ext>`
Frame order: natural file-name order (LLFF: sorted, as its poses are), RealEstate10K: time.
When frames are resized (`max_side`) or the images are a downscaled copy of what the cameras
describe (DL3DV `images_4`, LLFF), K is rescaled to the frames actually returned.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from datagen.camera_formats import (
    CameraSet,
    read_colmap,
    read_llff,
    read_nerfstudio,
    read_realestate10k,
)
from datagen.camera_formats._util import load_json
from datagen.ingest.errors import IngestError
from datagen.ingest.frame_source import FrameSource
from datagen.ingest.images import (
    IMAGE_SUFFIXES,
    check_sizes,
    fit_size,
    list_images,
    load_image,
    natural_key,
)

LICENSE_NOTES = {
    "images": "unspecified (user-provided images)",
    "video": "unspecified (user-provided video)",
    "realestate10k": "RealEstate10K camera annotations: CC BY 4.0 (Google); frames: the source "
    "video's own license",
    "nerfstudio": "unspecified (check the dataset's terms, e.g. DL3DV's)",
    "colmap": "unspecified (check the dataset's terms)",
    "llff": "unspecified (check the dataset's terms)",
}


def camera_error(path: Path, err: Exception) -> IngestError:
    """Wrap a camera_formats ValueError/FileNotFoundError as an IngestError naming `path`."""
    msg = str(err)
    if msg.startswith(str(path)):
        msg = msg[len(str(path)) :]
        msg = re.sub(r"^:(\d+):\s*", r"line \1: ", msg).lstrip(": ")
    return IngestError(path, f"malformed camera file: {msg}")


def _license_note(folder: Path, layout: str) -> str:
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md", "license.txt"):
        f = folder / name
        if f.is_file():
            first = next((ln.strip() for ln in f.read_text(errors="replace").splitlines()), "")
            return f"see {f.name}: {first[:120]}"
    return LICENSE_NOTES[layout]


def _rescale(cams: CameraSet, h: int, w: int, item: Path) -> CameraSet:
    """Cameras for images of size (h, w): scale K when the images are resized copies."""
    if (cams.height, cams.width) == (h, w):
        return cams
    if abs(cams.width / cams.height - w / h) > 2.0 / min(h, w):
        raise IngestError(
            item,
            f"cameras describe {cams.width}x{cams.height} images but the frames are {w}x{h} "
            "(different aspect ratio)",
        )
    K = cams.K.copy()
    K[:, 0] *= w / cams.width
    K[:, 1] *= h / cams.height
    return replace(cams, K=K, height=h, width=w)


def _select(cams: CameraSet, order: list[int]) -> CameraSet:
    pick = lambda a: None if a is None else a[order]  # noqa: E731
    return replace(
        cams,
        names=[cams.names[i] for i in order],
        K=cams.K[order],
        c2w=cams.c2w[order],
        timestamps=pick(cams.timestamps),
        bounds=pick(cams.bounds),
        distortion=None if cams.distortion is None else [cams.distortion[i] for i in order],
    )


def build_source(
    item: Path,
    layout: str,
    files: list[Path],
    *,
    cameras: CameraSet | None = None,
    timestamps: np.ndarray | None = None,
    max_side: int | None = None,
    max_frames: int | None = None,
    lazy: bool = True,
    license: str | None = None,
    meta: dict | None = None,
) -> FrameSource:
    """FrameSource over image `files` (all one size), optional cameras aligned with them."""
    if max_frames is not None:
        files = files[:max_frames]
        cameras = None if cameras is None else _select(cameras, list(range(len(files))))
        timestamps = None if timestamps is None else timestamps[: len(files)]
    if len(files) < 2:
        found = f"only {len(files)} image" + ("" if len(files) == 1 else "s")
        raise IngestError(item, f"{found}; need at least 2 frames")
    h0, w0 = check_sizes(item, files)
    h, w = fit_size(h0, w0, max_side)
    if cameras is not None:
        cameras = _rescale(cameras, h, w, item)
    size = (h, w) if (h, w) != (h0, w0) else None
    src_meta = {"source_size": [h0, w0], **(meta or {})}
    if timestamps is None:
        timestamps = np.arange(len(files), dtype=np.float64)
        src_meta["timestamps"] = "frame position (the layout carries no times)"
    source = FrameSource(
        name=item.stem if item.is_file() else item.name,
        path=item,
        layout=layout,
        frame_names=[str(f.relative_to(item) if f.is_relative_to(item) else f.name) for f in files],
        timestamps=timestamps,
        height=h,
        width=w,
        cameras=cameras,
        license=license or _license_note(item if item.is_dir() else item.parent, layout),
        meta=src_meta,
        _loader=lambda i: load_image(files[i], size),
    )
    if not lazy:
        _ = source.frames
    return source


def open_image_folder(folder: Path, **kw) -> FrameSource:
    """Every PNG/JPEG in `folder` (or its `images/`), natural order, no cameras."""
    files = list_images(folder)
    if not files and (folder / "images").is_dir():
        files = list_images(folder / "images")
    if not files:
        raise IngestError(folder, f"no frames found (no {'/'.join(IMAGE_SUFFIXES)} files)")
    return build_source(folder, "images", files, **kw)


def _resolve(folder: Path, file_path: str) -> Path | None:
    p = folder / file_path
    if p.is_file():
        return p
    for suffix in (".png", ".jpg", ".jpeg"):
        if p.with_name(p.name + suffix).is_file():
            return p.with_name(p.name + suffix)
    return None


def _aligned_files(cams: CameraSet, folder: Path, cam_file: Path) -> tuple[list[Path], list[int]]:
    """Image file per camera name (natural order) -> (files, camera order)."""
    order = sorted(range(len(cams)), key=lambda i: natural_key(cams.names[i]))
    files = []
    for i in order:
        f = _resolve(folder, cams.names[i])
        if f is None:
            raise IngestError(folder / cams.names[i], f"image listed in {cam_file.name} not found")
        files.append(f)
    return files, order


def _blender_size(cam_file: Path, folder: Path) -> tuple[int, int] | None:
    """(H, W) of the first listed image, for Blender files that carry no `w`/`h`."""
    try:
        data = load_json(cam_file)
    except (ValueError, FileNotFoundError):
        return None  # read_nerfstudio reports it
    frames = data.get("frames") if isinstance(data, dict) else None
    if not frames or not isinstance(frames, list) or "w" in data or not isinstance(frames[0], dict):
        return None
    f = _resolve(folder, str(frames[0].get("file_path", "")))
    return check_sizes(folder, [f]) if f else None


def open_nerfstudio(folder: Path, **kw) -> FrameSource:
    """`transforms.json` (nerfstudio, DL3DV, Blender) + the images it lists."""
    cam_file = folder / "transforms.json"
    try:
        cams = read_nerfstudio(cam_file, image_size=_blender_size(cam_file, folder))
    except (ValueError, FileNotFoundError) as e:
        raise camera_error(cam_file, e) from None
    files, order = _aligned_files(cams, folder, cam_file)
    return build_source(folder, "nerfstudio", files, cameras=_select(cams, order), **kw)


def open_colmap(model_dir: Path, images_dir: Path, item: Path, **kw) -> FrameSource:
    """A COLMAP sparse model (text or binary) + its images folder."""
    try:
        cams = read_colmap(model_dir)
    except (ValueError, FileNotFoundError) as e:
        raise camera_error(model_dir, e) from None
    files, order = _aligned_files(cams, images_dir, model_dir / "images")
    return build_source(item, "colmap", files, cameras=_select(cams, order), **kw)


def open_llff(folder: Path, **kw) -> FrameSource:
    """`poses_bounds.npy` + `images/` (one pose per image, sorted by file name)."""
    cam_file = folder / "poses_bounds.npy"
    images = sorted(
        p.name for p in (folder / "images").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    try:
        cams = read_llff(cam_file, names=None)
    except (ValueError, FileNotFoundError) as e:
        raise camera_error(cam_file, e) from None
    if len(images) != len(cams):
        raise IngestError(
            folder,
            f"{cam_file.name} holds {len(cams)} poses but images/ holds {len(images)} images",
        )
    cams = replace(cams, names=images)
    files = [folder / "images" / n for n in images]
    return build_source(folder, "llff", files, cameras=cams, **kw)


def open_realestate10k(cam_file: Path, frames_dir: Path, **kw) -> FrameSource:
    """RealEstate10K `<id>.txt` + frames named by timestamp (microseconds); matched by time."""
    by_stamp = {}
    for f in list_images(frames_dir):
        if f.stem.isdigit():
            by_stamp[int(f.stem)] = f
    if not by_stamp:
        raise IngestError(frames_dir, "no frames named <timestamp_us>.png/.jpg")
    first = next(iter(by_stamp.values()))
    size = check_sizes(frames_dir, [first])
    try:
        cams = read_realestate10k(cam_file, size)
    except (ValueError, FileNotFoundError) as e:
        raise camera_error(cam_file, e) from None
    order = [
        i for i in np.argsort(cams.timestamps, kind="stable") if cams.timestamps[i] in by_stamp
    ]
    if not order:
        raise IngestError(frames_dir, f"no frame matches a timestamp of {cam_file.name}")
    meta = {
        "url": cams.meta.get("url"),
        "cameras_without_frames": len(cams) - len(order),
        "frames_without_cameras": len(by_stamp) - len(order),
    }
    cams = _select(cams, [int(i) for i in order])
    files = [by_stamp[int(t)] for t in cams.timestamps]
    return build_source(
        cam_file,
        "realestate10k",
        files,
        cameras=cams,
        timestamps=cams.timestamps.astype(np.float64) / 1e6,
        meta=meta,
        **kw,
    )
