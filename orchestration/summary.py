"""The demo's closing table: per asset, its materialized partitions, key metrics and output URI."""

from __future__ import annotations

import math
from dataclasses import dataclass

import dagster as dg

# metadata names worth a column, best first (the first few that an asset has are shown)
KEY_METRICS = (
    "psnr",
    "ssim",
    "eval_psnr",
    "preview_psnr",
    "psnr_unseen",
    "loss",
    "clips",
    "accepted",
    "rejected",
    "samples",
    "videos",
    "levels",
    "pairs",
    "shards",
    "global_step",
    "training_seconds",
)
MAX_METRICS = 3


@dataclass
class Row:
    asset: str
    partitions: str
    metrics: str
    uri: str


def _plain(value) -> object:
    return getattr(value, "value", value)


def _number(value) -> float | None:
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x == int(x) and abs(x) < 1e9:
        return str(int(x))
    return f"{x:.4g}"


def key_metrics(metadata: dict, limit: int = MAX_METRICS) -> str:
    """``"name=value, …"`` of the first ``limit`` numeric entries named in ``KEY_METRICS``
    (exact name, or a name ending in ``/name`` such as ``eval/psnr``)."""
    picked: list[str] = []
    for want in KEY_METRICS:
        for name, value in metadata.items():
            if name == want or name.endswith("/" + want) or name.endswith("_" + want):
                x = _number(value)
                if x is not None and name not in {p.split("=")[0] for p in picked}:
                    picked.append(f"{name}={_fmt(x)}")
        if len(picked) >= limit:
            break
    return ", ".join(picked[:limit])


def summary_rows(instance: dg.DagsterInstance, keys: list[str]) -> list[Row]:
    """One row per asset key (user string), in the given order; assets never materialized are
    listed with ``-``."""
    rows = []
    for key in keys:
        asset_key = dg.AssetKey.from_user_string(key)
        event = instance.get_latest_materialization_event(asset_key)
        if event is None or event.asset_materialization is None:
            rows.append(Row(key, "-", "-", "-"))
            continue
        mat = event.asset_materialization
        parts = instance.get_materialized_partitions(asset_key)
        metadata = dict(mat.metadata)
        uri = _plain(metadata.get("uri") or metadata.get("checkpoint_uri") or "")
        rows.append(Row(key, str(len(parts)) if parts else "", key_metrics(metadata), str(uri)))
    return rows


def format_table(rows: list[Row]) -> str:
    """A plain-text table with columns asset | partitions | key metrics | output."""
    header = Row("asset", "partitions", "key metrics", "output")
    table = [header, *rows]
    widths = [max(len(getattr(r, f)) for r in table) for f in ("asset", "partitions", "metrics")]
    lines = []
    for i, r in enumerate(table):
        lines.append(
            f"{r.asset:<{widths[0]}}  {r.partitions:>{widths[1]}}  "
            f"{r.metrics:<{widths[2]}}  {r.uri}".rstrip()
        )
        if i == 0:
            lines.append("-" * min(sum(widths) + 4 + max(len(r.uri) for r in table) + 2, 100))
    return "\n".join(lines)
