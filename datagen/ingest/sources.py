"""Open any input item as a `FrameSource`, detecting its kind; batches never stop on one bad item.

Detection (`open_source(path)`):
  file *.mp4/.mov/.webm/.mkv/.avi/.m4v   video (imageio + ffmpeg)
  file transforms.json / poses_bounds.npy  its folder as nerfstudio / LLFF
  file <id>.txt (RealEstate10K cameras)    + frames in `<id>/`, `frames/` or `images/` beside it
  folder with transforms.json              nerfstudio / DL3DV
  folder with poses_bounds.npy             LLFF
  folder with cameras.{bin,txt}            COLMAP model; images in `../images`, `../../images`
  folder with sparse/0/ or sparse/         COLMAP scene; images in `images/`
  folder with one RealEstate10K .txt       RealEstate10K
  folder with PNG/JPEG files (or images/)  image folder
Anything else, and every broken item, raises `IngestError` naming the item and the problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from datagen.camera_formats import detect_format
from datagen.ingest.errors import IngestError
from datagen.ingest.frame_source import SOURCE_LAYOUTS, FrameSource
from datagen.ingest.images import IMAGE_SUFFIXES
from datagen.ingest.layouts import (
    LICENSE_NOTES,
    open_colmap,
    open_image_folder,
    open_llff,
    open_nerfstudio,
    open_realestate10k,
)
from datagen.ingest.video import VIDEO_SUFFIXES, read_video

__all__ = ["SOURCE_LAYOUTS", "FrameSource", "IngestError", "open_source", "open_sources"]

_COLMAP_FILES = ("cameras.bin", "cameras.txt")


def _is_re10k(path: Path) -> bool:
    try:
        return path.suffix.lower() == ".txt" and detect_format(path) == "realestate10k"
    except (ValueError, OSError):
        return False


def _re10k_frames(cam_file: Path) -> Path:
    for d in (cam_file.with_suffix(""), cam_file.parent / "frames", cam_file.parent / "images"):
        if d.is_dir():
            return d
    raise IngestError(
        cam_file,
        f"no frames folder for these cameras (looked for {cam_file.stem}/, frames/, images/)",
    )


def _colmap_model(folder: Path) -> Path | None:
    for d in (folder, folder / "sparse" / "0", folder / "sparse"):
        if any((d / f).is_file() for f in _COLMAP_FILES):
            return d
    return None


def _colmap_images(model: Path, item: Path) -> Path:
    for d in (item / "images", model.parent / "images", model.parent.parent / "images"):
        if d.is_dir():
            return d
    raise IngestError(model, "COLMAP model without an images/ folder beside it")


def _open_video(path: Path, fps, max_frames, max_side, license) -> FrameSource:
    frames, stamps, indices, meta = read_video(
        path, fps=fps, max_frames=max_frames, max_side=max_side
    )
    return FrameSource(
        name=path.stem,
        path=path,
        layout="video",
        frame_names=[f"frame_{i:06d}" for i in indices],
        timestamps=stamps,
        height=frames.shape[1],
        width=frames.shape[2],
        license=license or LICENSE_NOTES["video"],
        meta={**meta, "source_indices": indices},
        _frames=frames,
    )


def open_source(
    path: str | Path,
    *,
    max_frames: int | None = None,
    fps: float | None = None,
    max_side: int | None = None,
    lazy: bool = True,
    license: str | None = None,
) -> FrameSource:
    """Open one input item (see the module docstring for what is recognised).

    max_frames: keep the first N frames; fps: video only, keep at most this many frames per
    second; max_side: downsize frames (and K) so max(H, W) <= max_side; lazy: image-based
    sources decode frames on access (headers are checked now); license: overrides the note.
    """
    path = Path(path)
    kw = dict(max_frames=max_frames, max_side=max_side, lazy=lazy, license=license)
    if not path.exists():
        raise IngestError(path, "no such file or directory")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            return _open_video(path, fps, max_frames, max_side, license)
        if path.name == "transforms.json":
            return open_nerfstudio(path.parent, **kw)
        if path.name == "poses_bounds.npy":
            return open_llff(path.parent, **kw)
        if path.name in _COLMAP_FILES or path.name in ("images.bin", "images.txt"):
            model = path.parent
            return open_colmap(model, _colmap_images(model, model), model, **kw)
        if _is_re10k(path):
            return open_realestate10k(path, _re10k_frames(path), **kw)
        if suffix in IMAGE_SUFFIXES:
            raise IngestError(path, "a single image; need a video or at least 2 frames")
        raise IngestError(
            path,
            f"unsupported file type {suffix or '(no suffix)'!r} (videos: {', '.join(VIDEO_SUFFIXES)})",
        )
    if (path / "transforms.json").is_file():
        return open_nerfstudio(path, **kw)
    if (path / "poses_bounds.npy").is_file():
        return open_llff(path, **kw)
    model = _colmap_model(path)
    if model is not None:
        return open_colmap(model, _colmap_images(model, path), path, **kw)
    cams = [p for p in sorted(path.glob("*.txt")) if _is_re10k(p)]
    if len(cams) == 1:
        return open_realestate10k(cams[0], _re10k_frames(cams[0]), **kw)
    if len(cams) > 1:
        raise IngestError(path, f"{len(cams)} RealEstate10K camera files; open each one")
    return open_image_folder(path, **kw)


def open_sources(
    paths: Iterable[str | Path], **kwargs
) -> tuple[list[FrameSource], list[tuple[Path, str]]]:
    """Open every item -> (sources that opened, [(path, reason)] for those that did not).

    One bad item never stops the batch; `kwargs` go to `open_source`.
    """
    ok, failed = [], []
    for p in paths:
        try:
            ok.append(open_source(p, **kwargs))
        except IngestError as e:
            failed.append((Path(p), str(e)))
        except Exception as e:  # a bug or an unforeseen format problem: still report, continue
            failed.append((Path(p), f"{p}: unexpected {type(e).__name__}: {e}"))
    return ok, failed
