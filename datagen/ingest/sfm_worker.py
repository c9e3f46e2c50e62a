"""pycolmap SfM worker, run as its own process: `python -m datagen.ingest.sfm_worker CONFIG.json`.

pycolmap lives only in this process (STACK.md: importing it before PIL broke PIL's PNG writer).
The parent (`datagen.ingest.sfm`) writes the frames as PNGs and a JSON config; this process
writes `result.json` + `result.npz` into `work_dir`.

Modes:
  sfm          SIFT features (one shared camera), sequential or exhaustive matching,
               incremental mapping; the model with most registered images is kept
  triangulate  features + matching, then points triangulated from a known model (text model
               at `known_model`, poses and intrinsics held fixed)
Both undistort to PINHOLE with `pycolmap.undistort_images` when the lens distortion moves some
image point by more than `undistort_threshold_px` (or always / never).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pycolmap

DEVICE = pycolmap.Device.cpu


def _extract(cfg: dict, db: Path, camera_mode) -> None:
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = cfg.get("camera_model", "SIMPLE_RADIAL")
    reader.camera_params = cfg.get("camera_params", "")
    ext = pycolmap.FeatureExtractionOptions()
    ext.use_gpu = False
    ext.num_threads = cfg["num_threads"]
    ext.max_image_size = cfg.get("max_image_size", -1)
    ext.sift.max_num_features = cfg["max_num_features"]
    pycolmap.extract_features(
        db,
        cfg["image_dir"],
        image_names=cfg["image_names"],
        camera_mode=camera_mode,
        reader_options=reader,
        extraction_options=ext,
        device=DEVICE,
    )


def _match(cfg: dict, db: Path) -> None:
    opts = pycolmap.FeatureMatchingOptions()
    opts.use_gpu = False
    opts.num_threads = cfg["num_threads"]
    if cfg["matcher"] == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = cfg.get("overlap", 10)
        pairing.loop_detection = False
        pairing.num_threads = cfg["num_threads"]
        pycolmap.match_sequential(db, matching_options=opts, pairing_options=pairing, device=DEVICE)
    else:
        pycolmap.match_exhaustive(db, matching_options=opts, device=DEVICE)


def _pipeline_options(cfg: dict, n: int) -> pycolmap.IncrementalPipelineOptions:
    opts = pycolmap.IncrementalPipelineOptions()
    opts.num_threads = cfg["num_threads"]
    opts.random_seed = cfg.get("seed", 0)
    opts.min_model_size = max(3, min(10, n // 2))  # default 10 drops every model of < 10 images
    opts.extract_colors = True
    return opts


def _max_distortion_px(cam) -> float:
    """Largest shift (px) between distorted and pinhole projection over a border/grid sample."""
    if cam.model.name in ("SIMPLE_PINHOLE", "PINHOLE"):
        return 0.0
    u, v = np.meshgrid(np.linspace(0, cam.width, 17), np.linspace(0, cam.height, 17))
    img = np.stack([u.ravel(), v.ravel()], -1).astype(np.float64)
    xy = cam.cam_from_img(img)
    ok = np.isfinite(xy).all(axis=1)
    fx, fy = cam.focal_length_x, cam.focal_length_y
    cx, cy = cam.principal_point_x, cam.principal_point_y
    pin = np.stack([fx * xy[ok, 0] + cx, fy * xy[ok, 1] + cy], -1)
    return float(np.abs(pin - img[ok]).max()) if ok.any() else float("inf")


def _undistort(cfg: dict, rec, work: Path):
    """Undistort images + model to PINHOLE; returns (reconstruction, image dir)."""
    model = work / "distorted_model"
    model.mkdir(exist_ok=True)
    rec.write(model)
    out = work / "undistorted"
    pycolmap.undistort_images(out, model, cfg["image_dir"], num_threads=cfg["num_threads"])
    return pycolmap.Reconstruction(out / "sparse"), out / "images"


def _export(rec, work: Path, extra: dict) -> None:
    names, poses, Ks, cams = [], [], [], {}
    for _, image in sorted(rec.images.items(), key=lambda kv: kv[1].name):
        if not image.has_pose:
            continue
        cam = rec.cameras[image.camera_id]
        names.append(image.name)
        poses.append(image.cam_from_world().matrix())
        Ks.append(cam.calibration_matrix())
        cams[image.name] = {
            "model": cam.model.name,
            "params": [float(p) for p in cam.params],
            "width": int(cam.width),
            "height": int(cam.height),
        }
    pts = list(rec.points3D.values())
    np.savez(
        work / "result.npz",
        cam_from_world=np.asarray(poses, np.float64).reshape(-1, 3, 4),
        K=np.asarray(Ks, np.float64).reshape(-1, 3, 3),
        points=np.asarray([p.xyz for p in pts], np.float64).reshape(-1, 3),
        colors=np.asarray([p.color for p in pts], np.uint8).reshape(-1, 3),
        track_length=np.asarray([p.track.length() for p in pts], np.int64),
        errors=np.asarray([p.error for p in pts], np.float64),
    )
    stats = {
        "num_registered": len(names),
        "num_points": len(pts),
        "mean_reprojection_error_px": float(rec.compute_mean_reprojection_error()) if pts else 0.0,
        "mean_track_length": float(rec.compute_mean_track_length()) if pts else 0.0,
    }
    info = {"names": names, "cameras": cams, "stats": stats, **extra}
    (work / "result.json").write_text(json.dumps(info, indent=1))


def _known_model(path: str, db_path: Path):
    """The known text model rebuilt with the database's camera/rig/frame/image ids.

    Feature extraction numbers images in the order its threads finish, so the ids of a model
    written beforehand do not match the database's; triangulate_points needs them equal.
    """
    known = pycolmap.Reconstruction(path)
    by_name = {im.name: im for im in known.images.values()}
    rec = pycolmap.Reconstruction()
    db = pycolmap.Database.open(db_path)
    try:
        for im in db.read_all_images():
            k = by_name[im.name]
            kc = known.cameras[k.camera_id]
            cam = pycolmap.Camera(
                camera_id=im.camera_id,
                model=kc.model.name,
                width=kc.width,
                height=kc.height,
                params=list(kc.params),
            )
            rec.add_camera_with_trivial_rig(cam)
            image = pycolmap.Image(name=im.name, camera_id=im.camera_id, image_id=im.image_id)
            rec.add_image_with_trivial_frame(image, k.cam_from_world())
    finally:
        db.close()
    return rec


def run(cfg: dict) -> None:
    t0 = time.perf_counter()
    work = Path(cfg["work_dir"])
    db = work / "database.db"
    n = len(cfg["image_names"])
    extra: dict = {"pycolmap": pycolmap.__version__}
    if cfg["mode"] == "sfm":
        _extract(cfg, db, pycolmap.CameraMode.SINGLE)
        _match(cfg, db)
        models = pycolmap.incremental_mapping(
            db, cfg["image_dir"], work / "sparse", options=_pipeline_options(cfg, n)
        )
        extra["num_models"] = len(models)
        if not models:
            _export(pycolmap.Reconstruction(), work, extra)
            return
        rec = max(models.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()))
    else:
        _extract(cfg, db, pycolmap.CameraMode.PER_IMAGE)
        _match(cfg, db)
        known = _known_model(cfg["known_model"], db)
        tri = work / "triangulated"
        tri.mkdir(exist_ok=True)
        opts = _pipeline_options(cfg, n)
        rec = pycolmap.triangulate_points(known, db, cfg["image_dir"], tri, options=opts)
        extra["num_models"] = 1
    cam = next(iter(rec.cameras.values()))
    extra["max_distortion_px"] = max(_max_distortion_px(c) for c in rec.cameras.values())
    extra["distorted_camera"] = {"model": cam.model.name, "params": [float(p) for p in cam.params]}
    policy = cfg.get("undistort", "auto")
    extra["undistorted_dir"] = None
    if policy == "always" or (
        policy == "auto" and extra["max_distortion_px"] > cfg.get("undistort_threshold_px", 0.5)
    ):
        rec, image_dir = _undistort(cfg, rec, work)
        extra["undistorted_dir"] = str(image_dir)
    extra["time_s"] = time.perf_counter() - t0
    _export(rec, work, extra)


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
