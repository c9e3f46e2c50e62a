"""LaLRM evaluation (Wonderland §4.3, Tables 2–3): render quality at unseen views of held-out clips.

Per clip: the context window (``num_context`` frames, ``stride`` apart, from frame 0, resized to
the training size, cameras relative to the first context frame) → the LaLRM's Gaussians (stored
latents when they cover the window, else the checkpoint's VAE) → renders at

- **unseen** views: frames the context skipped *within* its coverage ("the unsampled frames
  within the view coverage", Table 3), at most ``max_unseen`` evenly spaced; when the context has
  no gap (stride 1), the clip's frames outside the window instead (recorded as
  ``unseen_kind = "outside"``);
- **seen** views: the context frames themselves (reconstruction of the input).

Metrics per view: PSNR, SSIM (Gaussian window σ 1.5) and LPIPS (VGG-16, only with weights given);
also the mean-colour baseline's PSNR at the unseen views. Clip values are means over views;
reported values are means over clips. The preview has, per clip (up to ``preview_clips``), a row
of ground-truth unseen views over a row of their renders.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import Tensor
from tqdm.auto import tqdm

from datagen.clips.clip import Clip
from datagen.previews import contact_sheet
from datagen.store import ArtifactStore
from datagen.video_io import to_uint8_frames
from models.lalrm import render_cameras, scene_of
from models.metrics import LPIPS
from training.evaluation.common import (
    image_metrics,
    iter_clips,
    load_lpips,
    markdown_table,
    mean,
    mean_color_baseline,
)
from training.lalrm_infer import SceneInput, clip_context, clip_views, scene_gaussians
from training.modules.lalrm import LaLRMModule
from training.publish import INDEX, fetch_published

METRICS = ("psnr", "ssim", "lpips")


@dataclass
class LaLRMEvalConfig:
    """num_context / stride: the context window (the training task's); height / width: resize
    target (None: the clip's size); max_unseen: unseen views per clip; max_clips: clips
    evaluated; dtype: autocast dtype of the network (None: float32); render_chunk: views per
    render call; preview_clips / preview_views: the preview's size."""

    num_context: int = 9
    stride: int = 1
    height: int | None = None
    width: int | None = None
    max_unseen: int = 8
    max_clips: int = 8
    dtype: str | None = None
    render_chunk: int = 4
    preview_clips: int = 2
    preview_views: int = 4


@dataclass
class LaLRMEvaluation:
    """metrics: means over clips (``unseen/psnr``, ``seen/ssim``, ...); clips: one row per clip;
    preview: uint8 contact sheet; scene / context: the first clip's Gaussians (batch of one) and
    its context, for export; background: the module's render background."""

    metrics: dict[str, float]
    clips: list[dict]
    preview: np.ndarray | None
    scene: dict[str, Tensor] | None = None
    context: SceneInput | None = None
    background: Tensor | None = None
    config: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"metrics": self.metrics, "clips": self.clips, "config": self.config}


def unseen_views(
    num_frames: int, context_idx: np.ndarray, max_unseen: int
) -> tuple[np.ndarray, str]:
    """``(indices, kind)``: up to ``max_unseen`` evenly spaced frames not in the context, taken
    inside its coverage (kind ``inside``) or, without a gap there, outside it (``outside``);
    ``none`` when the clip has no other frame."""
    others = np.setdiff1d(np.arange(num_frames), context_idx)
    inside = others[(others > context_idx[0]) & (others < context_idx[-1])]
    pool, kind = (inside, "inside") if len(inside) else (others, "outside")
    if not len(pool):
        return pool.astype(np.int64), "none"
    picks = np.linspace(0, len(pool) - 1, min(max_unseen, len(pool))).round().astype(np.int64)
    return pool[np.unique(picks)].astype(np.int64), kind


def _views_metrics(
    prefix: str, pred: Tensor, target: Tensor, lpips: LPIPS | None
) -> dict[str, float]:
    values = image_metrics(pred, target, lpips)
    return {f"{prefix}/{name}": float(v.mean()) for name, v in values.items()}


@torch.no_grad()
def evaluate_clip(
    module: LaLRMModule, clip: Clip, cfg: LaLRMEvalConfig, lpips: LPIPS | None = None
) -> tuple[dict, dict]:
    """One clip: ``(row, extras)``; row holds the clip's metrics and counts, extras the context,
    the Gaussians and the unseen ground truth / renders (CPU) for previews and export."""
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(cfg.dtype or "")
    context = clip_context(clip, cfg.num_context, cfg.stride, 0, cfg.height, cfg.width)
    gaussians = scene_gaussians(module, context, dtype)
    scene = scene_of(gaussians)
    device = scene["means"].device
    H, W = context.frames.shape[-2:]

    def render(K: Tensor, c2w: Tensor) -> Tensor:
        rgb, _ = render_cameras(
            scene, K.to(device), c2w.to(device), H, W, module.background, cfg.render_chunk
        )
        return rgb.cpu()

    seen = render(context.K, context.c2w)
    row = {
        "key": clip.key,
        "latents": "stored" if context.latents is not None else "vae",
        "gaussians": int(scene["opacities"].numel()),
        "seen_views": len(context.idx),
        **_views_metrics("seen", seen, context.frames, lpips),
    }
    idx, kind = unseen_views(clip.num_frames, context.idx, cfg.max_unseen)
    row["unseen_kind"], row["unseen_views"] = kind, len(idx)
    extras = {"context": context, "gaussians": gaussians, "truth": None, "renders": None}
    if len(idx):
        truth, K, c2w = clip_views(clip, idx, context.anchor, H, W)
        pred = render(K, c2w)
        row.update(_views_metrics("unseen", pred, truth, lpips))
        baseline = image_metrics(mean_color_baseline(truth), truth)["psnr"]
        row["unseen/psnr_mean_color"] = float(baseline.mean())
        extras["truth"], extras["renders"] = truth, pred
    return row, extras


def evaluate_lalrm(
    module: LaLRMModule,
    clips: Iterable[tuple[str, Clip]] | Iterable[Clip],
    cfg: LaLRMEvalConfig | None = None,
    lpips: LPIPS | None = None,
    progress: bool = True,
) -> LaLRMEvaluation:
    """Evaluate ``module`` (eval mode, on its device) on ``clips`` (``Clip`` or ``(set, Clip)``,
    e.g. ``common.iter_clips``); clips shorter than the context are skipped and counted
    (``skipped_clips``). ValueError when no clip qualifies."""
    cfg = cfg or LaLRMEvalConfig()
    module.eval()
    rows, preview_rows = [], []
    first: dict | None = None
    skipped = 0
    for item in tqdm(clips, desc="LaLRM eval", total=cfg.max_clips, disable=not progress):
        set_uri, clip = item if isinstance(item, tuple) else ("", item)
        if clip.num_frames < (cfg.num_context - 1) * cfg.stride + 1:
            skipped += 1
            continue
        row, extras = evaluate_clip(module, clip, cfg, lpips)
        row["set"] = set_uri
        rows.append(row)
        first = first or extras
        if extras["truth"] is not None and len(preview_rows) < 2 * cfg.preview_clips:
            picks = np.linspace(0, len(extras["truth"]) - 1, cfg.preview_views).round()
            picks = np.unique(picks.astype(np.int64))
            preview_rows.append(list(to_uint8_frames(extras["truth"][picks])))
            preview_rows.append(list(to_uint8_frames(extras["renders"][picks])))
        if len(rows) >= cfg.max_clips:
            break
    if not rows:
        raise ValueError(
            f"no clip to evaluate: {skipped} clip(s) shorter than a context of "
            f"{cfg.num_context} frames at stride {cfg.stride}"
        )
    keys = sorted({k for row in rows for k in row if "/" in k})
    metrics = {k: mean(row.get(k) for row in rows) for k in keys}
    metrics = {k: v for k, v in metrics.items() if v is not None}
    metrics.update(
        clips=float(len(rows)),
        skipped_clips=float(skipped),
        unseen_views=float(sum(r["unseen_views"] for r in rows)),
    )
    preview = contact_sheet(preview_rows, tile_height=96) if preview_rows else None
    return LaLRMEvaluation(
        metrics=metrics,
        clips=rows,
        preview=preview,
        scene=first["gaussians"],
        context=first["context"],
        background=module.background,
        config=asdict(cfg),
    )


TABLE_COLUMNS = (
    ("key", "clip", "s"),
    ("unseen_views", "unseen views", "d"),
    ("unseen/psnr", "PSNR ↑", ".2f"),
    ("unseen/ssim", "SSIM ↑", ".3f"),
    ("unseen/lpips", "LPIPS ↓", ".3f"),
    ("unseen/psnr_mean_color", "PSNR mean colour", ".2f"),
    ("seen/psnr", "seen PSNR", ".2f"),
    ("seen/ssim", "seen SSIM", ".3f"),
)


def metrics_table(evaluation: LaLRMEvaluation) -> str:
    """Markdown table like Wonderland's Tables 2–3 (unseen views), one row per clip + the mean;
    the LPIPS column only when LPIPS was computed."""
    columns = [c for c in TABLE_COLUMNS if c[0] != "unseen/lpips" or "unseen/lpips" in
               evaluation.metrics]  # fmt: skip
    rows = [*evaluation.clips, {"key": "**mean**", **evaluation.metrics}]
    rows[-1]["unseen_views"] = int(evaluation.metrics["unseen_views"])
    return markdown_table(rows, columns)


# ---- published checkpoints ----------------------------------------------------------------------

TASK_KEYS = ("num_context", "stride", "height", "width")


def run_task_config(folder: str | Path) -> dict:
    """``num_context``, ``stride``, ``height``, ``width`` of the (benchmark) data task a published
    LaLRM trained with, from its ``run_config.yaml``; {} when the folder has none."""
    path = Path(folder) / "run_config.yaml"
    if not path.is_file():
        return {}
    config = yaml.safe_load(path.read_text()) or {}
    task = ((config.get("data") or {}).get("init_args") or {}).get("task_config") or {}
    return {k: task[k] for k in TASK_KEYS if task.get(k) is not None}


def vae_fallback(folder: str | Path) -> str | None:
    """The video_vae URI of an export's lineage when the VAE the export names is neither
    embedded nor present on this machine (else None: load it as recorded)."""
    folder = Path(folder)
    recorded = json.loads((folder / "config.json").read_text()).get("vae", {}).get("path")
    if (folder / "vae").is_dir() or not recorded or "://" in recorded or Path(recorded).exists():
        return None
    index = json.loads((folder / INDEX).read_text()) if (folder / INDEX).is_file() else {}
    for uri in index.get("inputs", []):
        if "/checkpoints/video_vae/" in uri:
            return uri
    return None


def evaluate_published(
    store: ArtifactStore,
    prefix: str,
    set_uris: list[str],
    overrides: dict | None = None,
    lpips_weights: str | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> LaLRMEvaluation:
    """``evaluate_lalrm`` of the published LaLRM at ``prefix`` (fetched, verified) on the clips of
    ``set_uris``; the context window defaults to the checkpoint's training task
    (``run_task_config``), ``overrides`` replace ``LaLRMEvalConfig`` fields; LPIPS when
    ``lpips_weights`` (local safetensors) is given."""
    with tempfile.TemporaryDirectory(prefix="wonderforge-lalrm-eval-") as tmp:
        folder = fetch_published(store, prefix, Path(tmp) / "export")
        task = run_task_config(folder)
        module = LaLRMModule.load(folder, device, vae=vae_fallback(folder))
    cfg = LaLRMEvalConfig(**{**task, **(overrides or {})})
    lpips = load_lpips(lpips_weights, device) if lpips_weights else None
    clips = iter_clips(set_uris, fields={"latents"})
    return evaluate_lalrm(module, clips, cfg, lpips, progress)
