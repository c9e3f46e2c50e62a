"""Helpers shared by the evaluations: which shard sets are held out (checkpoint lineage), clips
streamed from manifest URIs, per-image PSNR / SSIM / LPIPS, means and markdown tables.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor

from datagen.clips.clip import Clip
from datagen.shards import manifest_key, published_sets, read_clips
from datagen.store import ArtifactStore, store_from_env_uri
from models.autoencoders import ssim
from models.metrics import LPIPS
from training.data.stream import set_root
from training.publish import INDEX

BENCHMARK_ROOTS = ("shards/synthetic", "shards/real")  # procedural + ingested clips
PSNR_MAX_DB = 100.0  # PSNR of identical images is capped here


# ---- held-out sets ------------------------------------------------------------------------------


def published_manifests(store: ArtifactStore, roots: Sequence[str] = BENCHMARK_ROOTS) -> list[str]:
    """Manifest URIs of every published shard set under ``roots`` (sorted within each root)."""
    return [
        store.uri(manifest_key(prefix))
        for root in roots
        for prefix in sorted(published_sets(store, root))
    ]


def checkpoint_lineage(index_uri_or_index: str | dict, follow: Sequence[str] = ()) -> set[str]:
    """Inputs (URIs) of a published checkpoint — its folder URI or its index dict — plus, for
    every input that is a checkpoint of a model named in ``follow`` (``…/checkpoints/<model>/…``),
    that checkpoint's lineage in turn (e.g. a stage-2 run's stage-1 parent)."""
    if isinstance(index_uri_or_index, dict):
        index = index_uri_or_index
    else:
        uri = index_uri_or_index.rstrip("/")
        index = store_from_env_uri(uri).get_json(INDEX)
    inputs = set(index.get("inputs", []))
    for uri in list(inputs):
        if any(f"/checkpoints/{model}/" in uri for model in follow):
            inputs |= checkpoint_lineage(uri, follow)
    return inputs


def held_out(candidates: Sequence[str], trained: Iterable[str]) -> tuple[list[str], bool]:
    """``(sets, held_out)``: the ``candidates`` (manifest URIs) not in ``trained`` and True, or —
    when every candidate was trained on — all of them and False."""
    seen = {set_root(uri) for uri in trained}
    fresh = [uri for uri in candidates if set_root(uri) not in seen]
    return (fresh, True) if fresh else (list(candidates), False)


def iter_clips(
    set_uris: Iterable[str], max_clips: int | None = None, fields: Iterable[str] = ()
) -> Iterator[tuple[str, Clip]]:
    """``(set URI, clip)`` of the shard sets (manifest or folder URIs; local or S3), in manifest
    order, streamed one clip at a time; ``fields``: optional fields to decode (e.g. latents)."""
    count = 0
    for uri in set_uris:
        store = store_from_env_uri(set_root(uri))
        for clip in read_clips(store, "", fields=set(fields)):
            if max_clips is not None and count >= max_clips:
                return
            count += 1
            yield uri, clip


def shard_set_name(uri: str) -> str:
    """A short name of a set URI: its last two folder names (``synthetic/w0``)."""
    parts = set_root(uri).rstrip("/").split("/")
    return posixpath.join(*parts[-2:]) if len(parts) >= 2 else parts[-1]


# ---- metrics ------------------------------------------------------------------------------------


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB per image ``[N]`` of ``pred`` (clamped to [0, 1]) vs ``target [N, 3, H, W]``
    (data range 1, capped at ``PSNR_MAX_DB``)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} vs target {tuple(target.shape)}")
    mse = (pred.double().clamp(0, 1) - target.double()).square().flatten(1).mean(1)
    return (-10.0 * torch.log10(mse.clamp_min(10 ** (-PSNR_MAX_DB / 10)))).float()


@torch.no_grad()
def image_metrics(pred: Tensor, target: Tensor, lpips: LPIPS | None = None) -> dict[str, Tensor]:
    """Per-image ``psnr``, ``ssim`` (Gaussian window σ 1.5) and, given a loaded ``LPIPS``,
    ``lpips`` — each ``[N]`` (CPU float32) — of ``pred, target [N, 3, H, W]`` in [0, 1]."""
    pred, target = pred.float().clamp(0, 1), target.float()
    out = {"psnr": psnr(pred, target), "ssim": ssim(pred.double(), target.double()).float()}
    if lpips is not None:
        device = next(lpips.parameters()).device
        out["lpips"] = lpips(pred.to(device), target.to(device)).float()
    return {k: v.cpu() for k, v in out.items()}


def mean_color_baseline(target: Tensor) -> Tensor:
    """Each image's per-channel mean colour, ``[N, 3, H, W]``: the trivial prediction a
    reconstruction must beat."""
    return target.float().mean(dim=(-2, -1), keepdim=True).expand_as(target)


def load_lpips(path: str | Path, device: str | torch.device = "cpu") -> LPIPS:
    """LPIPS (VGG-16) with weights from a local safetensors file (``models.metrics.lpips``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LPIPS weights {path} do not exist")
    metric = LPIPS()
    try:
        metric.load_weights(load_file(str(path)))
    except KeyError as error:
        raise ValueError(f"{path}: {error.args[0]}") from None
    return metric.to(device)


def mean(values: Iterable[float]) -> float | None:
    """Mean of the finite values, None when there is none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else None


def markdown_table(rows: list[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A markdown table: one row per dict, ``columns`` = (key, header, format spec); missing or
    None values print as ``–``."""
    lines = [
        "| " + " | ".join(header for _, header, _ in columns) + " |",
        "|" + "|".join(" --- " for _ in columns) + "|",
    ]
    for row in rows:
        cells = []
        for key, _, spec in columns:
            value = row.get(key)
            cells.append("–" if value is None else format(value, spec))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
