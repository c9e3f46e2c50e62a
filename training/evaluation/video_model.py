"""Evaluation of the camera-guided video model (Wonderland §4.1, App. D).

For held-out clips read from shard sets: a window of ``num_frames`` frames (``stride`` apart,
from the clip's start, resized to the model's size, cameras relative to the first frame) gives
the conditioning image (frame 0), the camera path and the ground truth. The model generates a
video from the image and the path; then

- **camera-guidance precision**: the platform's own pose estimator (pycolmap SfM,
  ``datagen.ingest.sfm.ColmapEstimator``, seeded with the known intrinsics) runs on the
  generated frames; estimated and conditioning cameras are both made relative to the first
  frame and scale-normalised (``models.geometry.camera_precision``) and R_err (degrees) / T_err
  are averaged over the registered frames among the first ``pose_frames`` (16, App. D). A video
  whose SfM fails, or does not register frame 0 and one more frame, counts as an SfM failure
  (``sfm_failures``) and has no camera errors; it never stops the evaluation.
- **visual similarity**: PSNR and SSIM (Gaussian window, ``models.autoencoders.ssim``) against
  the ground-truth frames over the first ``similarity_frames`` frames (14, §4.1), frame 0
  included as the paper counts "the first 14 frames of the generated videos".

Not computed: LPIPS, FID and FVD (they need pretrained networks that would be downloaded).
Clip-level values are means over frames; the reported metrics are means over clips (camera
errors over the clips SfM registered).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from datagen.camera_formats import CameraSet
from datagen.ingest.sfm import ColmapEstimator, PoseEstimator, SfmError
from datagen.previews import contact_sheet
from datagen.shards import MANIFEST_NAME, read_clips
from datagen.store import store_from_env_uri
from datagen.video_io import to_uint8_frames
from models.autoencoders import ssim
from models.geometry import camera_precision
from training.data.video_task import VideoTaskConfig, video_sample
from training.modules.video_model import CameraVideoModule
from training.video_generation import model_geometry, pick_device

PSNR_MAX_DB = 100.0  # identical frames (MSE = 0) are reported as 100 dB


@dataclass
class VideoEvalConfig:
    """What to evaluate and how to sample.

    num_frames / height / width: the window and frame size (None: the model's own, from the
    base config); stride: frame step inside the clip; max_clips: clips evaluated (taken in turn
    from each set); steps / guidance_scale / scheduler / seed: sampling (clip ``i`` uses seed
    ``seed + i``); similarity_frames: frames for PSNR/SSIM (14); pose_frames: frames for the
    camera errors (16); run_sfm: estimate poses of the generated videos; sfm_threads /
    sfm_timeout_s: pycolmap's CPU threads and time limit per video.
    """

    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    stride: int = 1
    max_clips: int = 8
    steps: int = 50
    guidance_scale: float = 6.0
    scheduler: str = "ddim"
    seed: int = 0
    similarity_frames: int = 14
    pose_frames: int = 16
    run_sfm: bool = True
    sfm_threads: int = 1
    sfm_timeout_s: float = 600.0


@dataclass
class EvalClip:
    """One held-out window: frames ``[F, 3, H, W]`` in [0, 1], K ``[F, 3, 3]``, c2w ``[F, 4, 4]``
    relative to frame 0 (float32), caption, and where it came from (``set_uri``, ``key``)."""

    key: str
    set_uri: str
    frames: Tensor
    K: Tensor
    c2w: Tensor
    caption: str = ""


@dataclass
class VideoEvalResult:
    """``metrics`` (aggregates), ``clips`` (one dict per clip), ``preview`` uint8 ``[H, W, 3]``
    (per clip shown: a ground-truth row over a generated row)."""

    metrics: dict[str, Any]
    clips: list[dict[str, Any]]
    preview: np.ndarray | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "clips": self.clips, "config": self.config}


# ---- held-out clips ------------------------------------------------------------------------


def _set_root(uri: str) -> str:
    uri = uri.rstrip("/")
    suffix = "/" + MANIFEST_NAME
    return uri[: -len(suffix)] if uri.endswith(suffix) else uri


def _windows(set_uri: str, cfg: VideoTaskConfig) -> Iterator[EvalClip]:
    root = _set_root(set_uri)
    rng = np.random.default_rng(0)  # unused: windows start at frame 0
    span = (cfg.num_frames - 1) * cfg.stride + 1
    for clip in read_clips(store_from_env_uri(root), "", fields=set()):
        if clip.num_frames < span:
            continue
        s = video_sample(clip, rng, cfg)
        yield EvalClip(clip.key, set_uri, s["frames"], s["K"], s["c2w"], clip.caption)


def evaluation_clips(
    set_uris: list[str], num_frames: int, height: int, width: int, stride: int, max_clips: int
) -> list[EvalClip]:
    """Up to ``max_clips`` windows, taken in turn from each shard set (manifest or folder URIs);
    clips shorter than the window are skipped. ValueError when none qualifies."""
    if not set_uris:
        raise ValueError("no shard sets to evaluate on")
    cfg = VideoTaskConfig(num_frames, stride, height, width, True, False)
    streams = [_windows(uri, cfg) for uri in set_uris]
    out: list[EvalClip] = []
    while streams and len(out) < max_clips:
        for stream in list(streams):
            item = next(stream, None)
            if item is None:
                streams.remove(stream)
            elif len(out) < max_clips:
                out.append(item)
    if not out:
        raise ValueError(
            f"no clip of {set_uris} has the {(num_frames - 1) * stride + 1} frames a window of "
            f"{num_frames} frames at stride {stride} needs"
        )
    return out


# ---- metrics -------------------------------------------------------------------------------


def psnr_ssim(generated: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    """Per-frame PSNR (dB, data range 1, capped at ``PSNR_MAX_DB``) and SSIM ``[N]`` of frames
    ``[N, 3, H, W]`` in [0, 1]."""
    if generated.shape != truth.shape:
        raise ValueError(f"generated {list(generated.shape)} vs truth {list(truth.shape)}")
    g, t = generated.double().clamp(0, 1), truth.double().clamp(0, 1)
    mse = (g - t).square().flatten(1).mean(1)
    psnr = (-10.0 * torch.log10(mse.clamp_min(10 ** (-PSNR_MAX_DB / 10)))).float()
    return psnr, ssim(g, t).float()


def sfm_camera_errors(
    frames: np.ndarray,
    K: np.ndarray,
    c2w_gt: np.ndarray,
    estimator: PoseEstimator,
    pose_frames: int = 16,
) -> dict[str, Any]:
    """Run ``estimator`` on uint8 frames ``[F, H, W, 3]`` (seeded with ``K [F, 3, 3]``) and
    compare with the conditioning cameras ``c2w_gt [F, 4, 4]`` over the first ``pose_frames``.

    Returns ``status`` ("ok" or "failed"), ``reason`` when failed, ``registered`` (frames SfM
    registered), and when ok ``rot_err_deg``, ``trans_err`` and ``pose_frames_used``.
    """
    F, H, W = frames.shape[:3]
    known = CameraSet(
        names=[f"{i:06d}" for i in range(F)],
        K=np.asarray(K, np.float64),
        c2w=np.asarray(c2w_gt, np.float64),
        height=H,
        width=W,
    )
    try:
        res = estimator.estimate(frames, known=known)
    except SfmError as error:
        return {"status": "failed", "reason": str(error).splitlines()[0], "registered": 0}
    registered = np.asarray(res.registered, bool)
    order = np.flatnonzero(registered)
    used = order[order < pose_frames]
    out: dict[str, Any] = {"registered": int(registered.sum())}
    if not registered[0] or len(used) < 2:
        reason = "frame 0 not registered" if not registered[0] else "fewer than 2 frames"
        return {"status": "failed", "reason": f"{reason} among the first {pose_frames}", **out}
    est = np.asarray(res.cameras.c2w, np.float64)[np.searchsorted(order, used)]
    errors = camera_precision(torch.from_numpy(est), torch.from_numpy(c2w_gt[used]))
    return {"status": "ok", **out, **errors, "pose_frames_used": len(used)}


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def _preview_rows(truth: Tensor, generated: Tensor, tiles: int = 6) -> list[list[np.ndarray]]:
    picks = sorted(set(np.linspace(0, len(truth) - 1, tiles).round().astype(int).tolist()))
    gt, gen = to_uint8_frames(truth[picks]), to_uint8_frames(generated[picks])
    return [list(gt), list(gen)]


# ---- the loop ------------------------------------------------------------------------------


def evaluate_videos(
    generate: Callable[[EvalClip, int], Tensor],
    clips: Iterable[EvalClip],
    config: VideoEvalConfig,
    estimator: PoseEstimator | None = None,
    preview_clips: int = 2,
    progress: bool = True,
) -> VideoEvalResult:
    """Generate a video per clip (``generate(clip, seed) -> frames [F, 3, H, W]`` in [0, 1]) and
    measure it; ``estimator`` None skips the camera errors."""
    records, rows = [], []
    clips = list(clips)
    for i, clip in enumerate(tqdm(clips, desc="evaluate video model", disable=not progress)):
        generated = generate(clip, config.seed + i).detach().float().cpu()
        if generated.shape != clip.frames.shape:
            raise ValueError(
                f"clip {clip.key}: generated {list(generated.shape)}, "
                f"expected {list(clip.frames.shape)}"
            )
        n = min(config.similarity_frames, len(generated))
        psnr, sim = psnr_ssim(generated[:n], clip.frames[:n])
        record: dict[str, Any] = {
            "key": clip.key,
            "set": clip.set_uri,
            "psnr": float(psnr.mean()),
            "ssim": float(sim.mean()),
            "similarity_frames": n,
        }
        if estimator is not None:
            sfm = sfm_camera_errors(
                to_uint8_frames(generated),
                clip.K.numpy(),
                clip.c2w.double().numpy(),
                estimator,
                config.pose_frames,
            )
            record["sfm"] = sfm
        records.append(record)
        if i < preview_clips:
            rows += _preview_rows(clip.frames, generated)
    sfm_records = [r["sfm"] for r in records if "sfm" in r]
    ok = [s for s in sfm_records if s["status"] == "ok"]
    metrics = {
        "clips": len(records),
        "psnr": _mean([r["psnr"] for r in records]),
        "ssim": _mean([r["ssim"] for r in records]),
        "sfm_attempts": len(sfm_records),
        "sfm_failures": len(sfm_records) - len(ok),
        "rot_err_deg": _mean([s["rot_err_deg"] for s in ok]),
        "trans_err": _mean([s["trans_err"] for s in ok]),
    }
    preview = contact_sheet(rows, tile_height=96) if rows else None
    return VideoEvalResult(metrics, records, preview, asdict(config))


def evaluate_camera_video_model(
    module: CameraVideoModule,
    set_uris: list[str],
    config: VideoEvalConfig | None = None,
    estimator: PoseEstimator | None = None,
    progress: bool = True,
) -> VideoEvalResult:
    """Evaluate ``module`` on windows of the shard sets ``set_uris`` (module docstring).
    ``estimator`` defaults to pycolmap SfM (shared pinhole camera seeded with the known K)
    when ``config.run_sfm``."""
    geo = model_geometry(module)
    config = config or VideoEvalConfig()
    num_frames = config.num_frames or geo["num_frames"]
    height, width = config.height or geo["height"], config.width or geo["width"]
    if num_frames < 9 or (num_frames - 1) % 8:
        raise ValueError(
            f"num_frames={num_frames}: the CogVideoX VAE decodes F = 8k + 1 frames (9, 17, ..., 49)"
        )
    config = replace(config, num_frames=num_frames, height=height, width=width)
    clips = evaluation_clips(set_uris, num_frames, height, width, config.stride, config.max_clips)
    if estimator is None and config.run_sfm:
        estimator = ColmapEstimator(
            camera_model="SIMPLE_PINHOLE",
            num_threads=config.sfm_threads,
            timeout_s=config.sfm_timeout_s,
        )
    sampler = module.eval().sampler(config.scheduler)

    def generate(clip: EvalClip, seed: int) -> Tensor:
        _, frames = sampler.sample(
            clip.frames[0],
            clip.K,
            clip.c2w,
            prompt=clip.caption,
            num_frames=num_frames,
            steps=config.steps,
            guidance_scale=config.guidance_scale,
            seed=seed,
        )
        return frames

    return evaluate_videos(
        generate, clips, config, estimator if config.run_sfm else None, progress=progress
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m training.evaluation.video_model --checkpoint DIR --sets URI [URI ...]
    [--out results.json] [--preview preview.png]``."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--checkpoint", required=True, help="export_pretrained folder")
    ap.add_argument("--sets", nargs="+", required=True, help="shard-set manifest or folder URIs")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--preview", type=Path, default=None)
    ap.add_argument("--device", default="auto")
    for name, default in asdict(VideoEvalConfig()).items():
        kind = type(default) if default is not None else int
        if kind is bool:
            ap.add_argument(f"--{name.replace('_', '-')}", type=lambda s: s.lower() == "true")
        else:
            ap.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default)
    a = ap.parse_args(argv)
    config = VideoEvalConfig(
        **{k: getattr(a, k) for k in asdict(VideoEvalConfig()) if getattr(a, k) is not None}
    )
    module = CameraVideoModule.load(a.checkpoint, map_location=pick_device(a.device))
    result = evaluate_camera_video_model(module, list(a.sets), config)
    text = json.dumps(result.to_json(), indent=2)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_name(a.out.name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(a.out)
    if a.preview and result.preview is not None:
        from datagen.shards.codecs import encode_png

        tmp = a.preview.with_name(a.preview.name + ".tmp")
        tmp.write_bytes(encode_png(result.preview, 6))
        tmp.replace(a.preview)
    print(json.dumps(result.metrics, indent=2))


if __name__ == "__main__":
    main()
