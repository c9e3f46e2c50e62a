"""Frame-model evaluation (WorldFM §2.4–2.5): novel-view quality on held-out clips and multi-view
consistency along their camera paths, for three ways of producing a target view:

- ``anchor``: the point-cloud render alone (the explicit 3D anchor, holes black), no model;
- ``teacher``: the stage-II model (after the synthetic finetune), deterministic DDIM with
  ``teacher_steps`` steps;
- ``generator``: the distilled stage-III generator with its own timesteps (``[999, 200]``).

Every view is conditioned on the clip's reference frame closest in time (the frame task's rule)
and on the clean anchor; teacher and generator start from the same seeded noise. Metrics: PSNR
and SSIM (``models.autoencoders.ssim``: Gaussian window, σ 1.5) against the ground-truth frame,
averaged over frames. The consistency measure is ``reprojection.reprojection_psnr`` over each
clip's consecutive targets (frame t vs frame t+1 warped into view t with GT depth and poses; for
the anchor only over pixels both renders cover), also for the ground truth (its ceiling). The
preview strip has one row per frame: anchor | teacher | generator | GT.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from datagen.clips.clip import Clip
from datagen.previews import contact_sheet
from datagen.shards import manifest_key
from datagen.store import ArtifactStore
from models.autoencoders import decode, ssim
from models.frame import FewStepSampler, ddim_sample
from training.data.frame_clips import CLEAN_ANCHORS, batches, frame_triplets, iter_set_clips
from training.evaluation.reprojection import reprojection_psnr
from training.modules.frame_common import FrameExport, encode_frame_batch, load_frame_export
from training.publish import fetch_published

METHODS = ("anchor", "teacher", "generator")
PREVIEW_COLUMNS = ("anchor", "teacher", "generator", "ground truth")


@dataclass
class FrameEvalConfig:
    """teacher_steps: DDIM steps of the stage-II teacher; max_clips: clips evaluated (in set
    order); targets_per_clip: the first N targets of each clip (None: all; ≥ 2 for the
    consistency measure); batch_size: views per forward; seed: the noise; depth_tolerance:
    relative depth agreement of the occlusion test; preview_rows: frames in the preview strip."""

    teacher_steps: int = 25
    max_clips: int = 8
    targets_per_clip: int | None = None
    batch_size: int = 4
    seed: int = 0
    depth_tolerance: float = 0.05
    preview_rows: int = 4


@dataclass
class FrameEvaluation:
    """metrics: flat ``{"<method>/psnr", "<method>/ssim", "consistency/<method>_psnr", ...}``;
    preview: uint8 ``[H, W, 3]`` strip; clips: per-clip numbers."""

    metrics: dict[str, float]
    preview: np.ndarray
    clips: list[dict] = field(default_factory=list)


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR (dB, peak 1) ``[B]`` of images ``[B, 3, H, W]`` in [0, 1] (capped at 100 dB)."""
    mse = (pred.float() - target.float()).pow(2).mean((1, 2, 3))
    return -10 * torch.log10(mse.clamp_min(1e-10))


@torch.no_grad()
def generate_frames(
    export: FrameExport,
    batch: dict,
    noise: Tensor,
    timesteps: list[int] | None = None,
    steps: int | None = None,
) -> Tensor:
    """Frames ``[B, 3, H, W]`` in [0, 1] for a frame-task ``batch`` (on the export's device) from
    ``noise [B, C, h, w]``: the few-step sampler over ``timesteps`` (a distilled generator), else
    deterministic DDIM with ``steps`` steps (a stage-II model)."""
    _, cond = encode_frame_batch(export.vae, batch)
    z = noise.to(cond.reference)
    if timesteps is not None:
        latent = FewStepSampler(export.schedule, timesteps).sample(export.dit, z, cond)
    elif steps is not None:
        latent = ddim_sample(lambda x, t: export.dit(x, t, cond), z, export.schedule, steps)
    else:
        raise ValueError("give the generator's timesteps or the teacher's DDIM steps")
    return decode(export.vae, latent.to(export.vae.dtype)).float()


def latent_shape(export: FrameExport, height: int, width: int) -> tuple[int, int, int]:
    """``(C, h, w)`` of the export's latents for ``height × width`` frames."""
    f = int(export.dit.config.vae_scale_factor)
    if height % f or width % f:
        raise ValueError(f"frames of {height}x{width} are not a multiple of the VAE's {f}")
    return int(export.dit.config.in_channels), height // f, width // f


def _tile(image: Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


@torch.no_grad()
def evaluate_frame_models(
    clips: Iterable[tuple[str, Clip]],
    teacher: FrameExport,
    generator: FrameExport,
    config: FrameEvalConfig | None = None,
    device: str | torch.device = "cpu",
) -> FrameEvaluation:
    """Evaluate the anchor, the teacher and the generator on ``(set prefix, clip)`` pairs (module
    docstring); ``clips`` are read up to ``config.max_clips``."""
    cfg = config or FrameEvalConfig()
    timesteps = generator.config.get("timesteps")
    if not timesteps:
        raise ValueError("the generator export has no timesteps: is it a stage-III export?")
    for export in (teacher, generator):
        export.dit.to(device).eval()
        export.vae.to(device).eval()
    g = torch.Generator().manual_seed(cfg.seed)
    per_frame: dict[str, list[float]] = {f"{m}/{k}": [] for m in METHODS for k in ("psnr", "ssim")}
    coverage: list[float] = []
    consistency: dict[str, list[float]] = {m: [] for m in ("ground_truth", *METHODS)}
    visible: list[float] = []
    rows: list[list[np.ndarray]] = []
    report: list[dict] = []
    for n, (prefix, clip) in enumerate(tqdm(clips, desc="frame eval", unit="clip")):
        if n >= cfg.max_clips:
            break
        samples = frame_triplets(
            [(prefix, clip)], CLEAN_ANCHORS, cfg.seed, cfg.targets_per_clip, consecutive=True
        )
        views: dict[str, list[Tensor]] = {m: [] for m in ("ground_truth", *METHODS)}
        cams: dict[str, list[Tensor]] = {"K": [], "c2w": [], "depth": [], "covered": []}
        for batch in batches(samples, cfg.batch_size):
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            target = batch["target"]
            shape = (target.shape[0], *latent_shape(teacher, *target.shape[-2:]))
            noise = torch.randn(shape, generator=g)
            views["teacher"].append(generate_frames(teacher, batch, noise, steps=cfg.teacher_steps))
            views["generator"].append(generate_frames(generator, batch, noise, timesteps))
            views["anchor"].append(batch["anchor"].float())
            views["ground_truth"].append(target.float())
            coverage += batch["anchor_mask"].float().mean((1, 2, 3)).tolist()
            cams["K"].append(batch["target_K"])
            cams["c2w"].append(batch["target_c2w"])
            idx = batch["target_idx"].cpu().numpy()
            cams["depth"].append(torch.from_numpy(clip.depth[idx]).to(device))
            cams["covered"].append(batch["anchor_mask"][:, 0])
        if not views["ground_truth"]:
            continue
        frames = {m: torch.cat(v) for m, v in views.items()}
        K, c2w, depth, covered = (torch.cat(cams[k]) for k in ("K", "c2w", "depth", "covered"))
        clip_report = {"set": prefix, "clip": clip.key, "frames": len(frames["ground_truth"])}
        for m in METHODS:
            p = psnr(frames[m], frames["ground_truth"]).tolist()
            s = ssim(frames[m], frames["ground_truth"]).tolist()
            per_frame[f"{m}/psnr"] += p
            per_frame[f"{m}/ssim"] += s
            clip_report[f"{m}/psnr"] = _mean(p)
        for m, f in frames.items():
            masks = covered if m == "anchor" else None  # the render's holes are not content
            c, fraction = reprojection_psnr(f, depth, K, c2w, cfg.depth_tolerance, masks=masks)
            consistency[m] += c.tolist()
            if m == "ground_truth":
                visible += fraction.tolist()
            clip_report[f"consistency/{m}_psnr"] = _mean(c.tolist())
        report.append(clip_report)
        for i in range(min(cfg.preview_rows - len(rows), len(frames["ground_truth"]))):
            rows.append([_tile(frames[m][i]) for m in (*METHODS, "ground_truth")])
    if not report:
        raise ValueError("no clip with frame targets to evaluate")
    metrics = {name: _mean(values) for name, values in per_frame.items()}
    metrics["anchor/coverage"] = _mean(coverage)
    for m, values in consistency.items():
        metrics[f"consistency/{m}_psnr"] = _mean(values)
    metrics["consistency/covisible_fraction"] = _mean(visible)
    metrics["consistency/pairs"] = float(sum(math.isfinite(v) for v in consistency["ground_truth"]))
    metrics["clips"] = float(len(report))
    metrics["frames"] = float(len(per_frame["anchor/psnr"]))
    metrics["teacher_steps"] = float(cfg.teacher_steps)
    metrics["generator_steps"] = float(len(timesteps))
    return FrameEvaluation(metrics, contact_sheet(rows, tile_height=96), report)


def held_out_sets(store: ArtifactStore, prefixes: list[str], trained_on: Iterable[str]):
    """``(sets, held_out)``: the shard sets among ``prefixes`` whose manifest URI is not in
    ``trained_on`` (the lineage of the evaluated checkpoints) and True; if every set was trained
    on, all of them and False."""
    seen = set(trained_on)
    fresh = [p for p in prefixes if store.uri(manifest_key(p)) not in seen]
    return (fresh, True) if fresh else (list(prefixes), False)


def evaluate_published(
    store: ArtifactStore,
    teacher_prefix: str,
    generator_prefix: str,
    set_prefixes: list[str],
    config: FrameEvalConfig | None = None,
    device: str | torch.device = "cpu",
) -> FrameEvaluation:
    """``evaluate_frame_models`` of two published frame-model exports (fetched and verified) on
    the clips of the shard sets under ``set_prefixes``."""
    cfg = config or FrameEvalConfig()
    with tempfile.TemporaryDirectory(prefix="wonderforge-eval-") as tmp:
        teacher = load_frame_export(fetch_published(store, teacher_prefix, Path(tmp) / "teacher"))
        generator = load_frame_export(fetch_published(store, generator_prefix, Path(tmp) / "gen"))
    clips = iter_set_clips(store, set_prefixes, cfg.max_clips)
    return evaluate_frame_models(clips, teacher, generator, cfg, device)
