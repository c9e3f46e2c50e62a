"""Camera poses and intrinsics for a frame sequence: the `PoseEstimator` interface and its
implementations.

`ColmapEstimator` runs pycolmap SfM (SIFT on CPU, one shared camera, sequential matching for
videos / exhaustive for small sets, incremental mapping, undistortion to pinhole) in a separate
process (`datagen.ingest.sfm_worker`), so pycolmap never shares a process with PIL.
`KnownPosesEstimator` passes through the cameras a dataset layout brings (optionally
triangulating points and undistorting through the same worker). A learned estimator only has to
implement `estimate(frames, timestamps, known=None) -> SfmResult`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from datagen.camera_formats import CameraSet, invert_rigid, write_colmap_text
from datagen.camera_formats.colmap import CAMERA_MODELS
from datagen.ingest.images import list_images, load_image, save_png

_REPO_ROOT = Path(__file__).resolve().parents[2]


class SfmError(RuntimeError):
    """Pose estimation failed (worker crash, timeout, or no model)."""


@dataclass
class SfmResult:
    """Poses for the registered frames of one sequence.

    cameras:      CameraSet (OpenCV c2w, pinhole K) of the registered frames, in input order;
                  names = the input frame names
    registered:   bool [N] over the input frames
    points3d:     float64 [P, 3] sparse points (world frame of `cameras`)
    point_colors: uint8 [P, 3]
    stats:        registration_ratio, mean_reprojection_error_px, mean_track_length,
                  num_points, num_registered, num_frames (+ estimator-specific extras)
    estimator:    e.g. "pycolmap-4.2.1" or "known:nerfstudio"
    frames:       uint8 [M, H', W', 3] undistorted registered frames when the estimator
                  undistorted them (size = cameras.height/width), else None
    """

    cameras: CameraSet
    registered: np.ndarray
    points3d: np.ndarray
    point_colors: np.ndarray
    stats: dict[str, float]
    estimator: str
    frames: np.ndarray | None = None

    @property
    def undistorted(self) -> bool:
        return self.frames is not None


class PoseEstimator(Protocol):
    """Anything that estimates cameras for a frame sequence."""

    name: str

    def estimate(
        self,
        frames: np.ndarray,
        timestamps: np.ndarray | None = None,
        known: CameraSet | None = None,
    ) -> SfmResult:
        """frames uint8 [N, H, W, 3] in temporal order, timestamps float [N] s -> SfmResult."""
        ...


def pycolmap_version() -> str:
    """Installed pycolmap version, read from package metadata (without importing pycolmap)."""
    return version("pycolmap")


def _run_worker(cfg: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    work = Path(cfg["work_dir"])
    cfg_path = work / "config.json"
    cfg_path.write_text(json.dumps(cfg))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.setdefault("GLOG_minloglevel", "2")
    cmd = [sys.executable, "-m", "datagen.ingest.sfm_worker", str(cfg_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise SfmError(f"pycolmap worker timed out after {timeout_s} s") from None
    if proc.returncode != 0 or not (work / "result.json").is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise SfmError(f"pycolmap worker failed (exit code {proc.returncode}):\n{tail}")
    info = json.loads((work / "result.json").read_text())
    with np.load(work / "result.npz") as z:
        info.update({k: z[k] for k in z.files})
    return info


def _distortion(model: str, params: list[float]) -> dict[str, Any]:
    names = CAMERA_MODELS.get(model, ())
    dist = {k: v for k, v in zip(names, params) if k not in ("f", "fx", "fy", "cx", "cy")}
    return {"model": model, **dist} if dist else {}


def _to_result(
    info: dict[str, Any], names: list[str], estimator: str, keep_distortion: bool
) -> SfmResult:
    """Worker output (images named {i:06d}.png) -> SfmResult in input order."""
    n = len(names)
    order = [int(Path(s).stem) for s in info["names"]]
    registered = np.zeros(n, dtype=bool)
    registered[order] = True
    pos = np.argsort(order)  # worker lists images by name = input order already; be explicit
    w2c = np.tile(np.eye(4), (len(order), 1, 1))
    w2c[:, :3] = info["cam_from_world"][pos]
    cams_info = [info["cameras"][info["names"][i]] for i in pos]
    dist = None
    if keep_distortion and info.get("undistorted_dir") is None:
        dist = [_distortion(c["model"], c["params"]) for c in cams_info]
        dist = dist if any(dist) else None
    meta = {k: info[k] for k in ("pycolmap", "num_models", "max_distortion_px") if k in info}
    meta["distorted_camera"] = info.get("distorted_camera")
    cameras = CameraSet(
        names=[names[order[i]] for i in pos],
        K=info["K"][pos],
        c2w=invert_rigid(w2c),
        height=cams_info[0]["height"],
        width=cams_info[0]["width"],
        distortion=dist,
        meta=meta,
    )
    frames = None
    if info.get("undistorted_dir"):
        files = {p.stem: p for p in list_images(Path(info["undistorted_dir"]))}
        frames = np.stack([load_image(files[f"{order[i]:06d}"]) for i in pos])
    stats = {
        **{k: float(v) for k, v in info["stats"].items()},
        "num_frames": float(n),
        "registration_ratio": len(order) / n,
        "time_s": float(info.get("time_s", 0.0)),
    }
    return SfmResult(
        cameras=cameras.validate("SfM result"),
        registered=registered,
        points3d=info["points"],
        point_colors=info["colors"],
        stats=stats,
        estimator=estimator,
        frames=frames,
    )


@dataclass
class ColmapEstimator:
    """pycolmap incremental SfM with one shared camera per sequence.

    matcher: "sequential" (video; `overlap` neighbours, quadratic overlap, no loop detection),
        "exhaustive", or "auto" (exhaustive up to `exhaustive_max` frames, else sequential).
    camera_model: COLMAP model of the shared camera (SIMPLE_RADIAL, OPENCV, ...); `known`
        intrinsics, when given, seed it. undistort: "auto" (undistort when the distortion moves
        some pixel by more than `undistort_threshold_px`, else drop it as negligible), "always",
        or "never" (frames stay as they are; `cameras.distortion` holds the coefficients).
    num_threads: CPU threads for pycolmap; timeout_s: worker time limit; work_dir: keep the
        worker's files there (database, models) instead of a temporary folder.
    """

    matcher: str = "auto"
    exhaustive_max: int = 30
    overlap: int = 10
    camera_model: str = "SIMPLE_RADIAL"
    max_num_features: int = 4096
    max_image_size: int = 1600
    undistort: str = "auto"
    undistort_threshold_px: float = 0.5
    num_threads: int = 2
    seed: int = 0
    timeout_s: float | None = 1800.0
    work_dir: Path | None = None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if self.matcher not in ("auto", "sequential", "exhaustive"):
            raise ValueError(f"matcher must be auto/sequential/exhaustive, got {self.matcher!r}")
        if self.undistort not in ("auto", "always", "never"):
            raise ValueError(f"undistort must be auto/always/never, got {self.undistort!r}")
        self.name = f"pycolmap-{pycolmap_version()}"

    def _config(self, n: int, known: CameraSet | None) -> dict[str, Any]:
        matcher = self.matcher
        if matcher == "auto":
            matcher = "exhaustive" if n <= self.exhaustive_max else "sequential"
        params = ""
        if known is not None and self.camera_model in ("SIMPLE_RADIAL", "SIMPLE_PINHOLE"):
            K = known.K.mean(axis=0)
            f = 0.5 * (K[0, 0] + K[1, 1])
            params = f"{f},{K[0, 2]},{K[1, 2]}" + (
                ",0" if self.camera_model[-6:] == "RADIAL" else ""
            )
        return {
            "mode": "sfm",
            "matcher": matcher,
            "overlap": self.overlap,
            "camera_model": self.camera_model,
            "camera_params": params,
            "max_num_features": self.max_num_features,
            "max_image_size": self.max_image_size,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "undistort": self.undistort,
            "undistort_threshold_px": self.undistort_threshold_px,
        }

    def estimate(
        self,
        frames: np.ndarray,
        timestamps: np.ndarray | None = None,
        known: CameraSet | None = None,
        names: list[str] | None = None,
    ) -> SfmResult:
        """SfM over uint8 frames [N, H, W, 3] (temporal order). Raises SfmError when nothing
        registers. `names` label the frames in the result (default "000000", ...)."""
        n = len(frames)
        if n < 2:
            raise SfmError(f"SfM needs at least 2 frames, got {n}")
        names = list(names) if names is not None else [f"{i:06d}" for i in range(n)]
        if self.work_dir is None:
            ctx = tempfile.TemporaryDirectory(prefix="sfm_")
        else:
            Path(self.work_dir).mkdir(parents=True, exist_ok=True)
            ctx = contextlib.nullcontext(tempfile.mkdtemp(prefix="sfm_", dir=self.work_dir))
        with ctx as tmp:
            work = Path(tmp)
            image_dir = work / "images"
            image_dir.mkdir(parents=True, exist_ok=True)
            files = [f"{i:06d}.png" for i in range(n)]
            for f, rgb in zip(files, frames):
                save_png(np.asarray(rgb), image_dir / f)
            cfg = {**self._config(n, known), "work_dir": str(work), "image_dir": str(image_dir)}
            info = _run_worker({**cfg, "image_names": files}, self.timeout_s)
            if not info["names"]:
                raise SfmError(
                    f"SfM registered none of {n} frames ({info.get('num_models', 0)} models): "
                    "too little texture, overlap or parallax?"
                )
            result = _to_result(info, names, self.name, keep_distortion=self.undistort == "never")
        if timestamps is not None:  # CameraSet keeps integer microseconds
            us = np.round(np.asarray(timestamps, np.float64) * 1e6).astype(np.int64)
            result.cameras.timestamps = us[result.registered]
        return result


@dataclass
class KnownPosesEstimator:
    """Cameras a dataset layout brings, passed through as an SfmResult.

    layout: names the source in `estimator` ("known:<layout>"). triangulate: run features and
    matching in the pycolmap worker and triangulate sparse points with the poses fixed (stats
    then hold real reprojection errors and track lengths; otherwise no points and NaN errors).
    Known cameras with lens distortion are undistorted to pinhole through the worker when
    `undistort` is "auto"/"always".
    """

    layout: str = "layout"
    triangulate: bool = False
    undistort: str = "auto"
    undistort_threshold_px: float = 0.5
    max_num_features: int = 4096
    num_threads: int = 2
    timeout_s: float | None = 1800.0
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"known:{self.layout}"

    def estimate(
        self,
        frames: np.ndarray,
        timestamps: np.ndarray | None = None,
        known: CameraSet | None = None,
    ) -> SfmResult:
        if known is None:
            raise SfmError("KnownPosesEstimator needs the layout's cameras (known=...)")
        n = len(known)
        if len(frames) != n:
            raise SfmError(f"{len(frames)} frames but {n} known cameras")
        needs_worker = self.triangulate or (known.has_distortion and self.undistort != "never")
        if not needs_worker:
            stats = {
                "registration_ratio": 1.0,
                "num_registered": float(n),
                "num_frames": float(n),
                "num_points": 0.0,
                "mean_reprojection_error_px": float("nan"),
                "mean_track_length": float("nan"),
            }
            return SfmResult(
                cameras=known,
                registered=np.ones(n, dtype=bool),
                points3d=np.zeros((0, 3)),
                point_colors=np.zeros((0, 3), np.uint8),
                stats=stats,
                estimator=self.name,
            )
        with tempfile.TemporaryDirectory(prefix="known_") as tmp:
            work = Path(tmp)
            (work / "images").mkdir()
            files = [f"{i:06d}.png" for i in range(n)]
            for f, rgb in zip(files, frames):
                save_png(np.asarray(rgb), work / "images" / f)
            write_colmap_text(replace(known, names=files), work / "known")
            cfg = {
                "mode": "triangulate",
                "camera_model": (known.distortion[0] or {}).get("model", "PINHOLE")
                if known.has_distortion
                else "PINHOLE",
                "known_model": str(work / "known"),
                "work_dir": str(work),
                "image_dir": str(work / "images"),
                "image_names": files,
                "matcher": "exhaustive" if n <= 30 else "sequential",
                "max_num_features": self.max_num_features,
                "num_threads": self.num_threads,
                "undistort": self.undistort,
                "undistort_threshold_px": self.undistort_threshold_px,
            }
            info = _run_worker(cfg, self.timeout_s)
            result = _to_result(info, list(known.names), self.name, keep_distortion=True)
        if not result.registered.all():
            raise SfmError(f"triangulation lost {int((~result.registered).sum())} known cameras")
        if result.frames is None:  # poses were held fixed: keep the layout's own CameraSet
            result.cameras = known
        else:
            result.cameras = replace(
                result.cameras,
                timestamps=known.timestamps,
                bounds=known.bounds,
                meta={**known.meta, **result.cameras.meta},
            )
        return result
