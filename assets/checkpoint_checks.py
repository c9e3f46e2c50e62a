"""Asset checks on published checkpoints, generic over training assets.

`checkpoint_checks(asset, model)` builds three checks on the checkpoint that
`checkpoints/<model>/latest.json` points at:

- `checkpoint_files`: every file of the version's `index.json` exists with its size and sha256;
- `checkpoint_metrics`: its recorded metrics are finite numbers (a NaN/inf loss fails);
- `checkpoint_loads`: the folder, fetched and verified, loads and runs one forward pass
  (`training.smoke`; only for models that have registered a smoke test).

A training asset gets them by passing its key and model name, e.g.
`checkpoint_checks(lalrm_stage1, "lalrm_stage1")` once `training/smoke.py` knows the model.
"""

from __future__ import annotations

import math
import posixpath
import tempfile
import time
from pathlib import Path

import dagster as dg

from datagen.store import ArtifactStore, ObjectNotFound
from training import registry
from training.publish import INDEX, fetch_published

FILES, METRICS, LOADS = "checkpoint_files", "checkpoint_metrics", "checkpoint_loads"


def _latest(store: ArtifactStore, model: str) -> tuple[str, str, dict] | dg.AssetCheckResult:
    """(version, prefix, index) of the latest checkpoint, or a failed result saying why not."""
    pointer = registry.latest(store, model)
    if pointer is None:
        return dg.AssetCheckResult(
            passed=False,
            metadata={"problem": f"no {model} checkpoint promoted to latest yet"},
        )
    version = pointer["version"]
    prefix = registry.version_prefix(model, version)
    try:
        index = store.get_json(posixpath.join(prefix, INDEX))
    except ObjectNotFound:
        return dg.AssetCheckResult(
            passed=False,
            metadata={"problem": f"latest points at {store.uri(prefix)}, which has no {INDEX}"},
        )
    return version, prefix, index


def verify_files(store: ArtifactStore, prefix: str, index: dict) -> list[str]:
    """Problems of the published files against the index (missing, wrong size, wrong sha256)."""
    problems = []
    for relative, entry in sorted(index.get("files", {}).items()):
        key = posixpath.join(prefix, relative)
        if not store.exists(key):
            problems.append(f"{relative}: missing")
            continue
        size = store.size(key)
        if size != entry.get("bytes"):
            problems.append(f"{relative}: {size} bytes, index says {entry.get('bytes')}")
        elif store.sha256(key) != entry.get("sha256"):
            problems.append(f"{relative}: sha256 differs from the index")
    if not index.get("files"):
        problems.append("the index lists no files")
    return problems


def non_finite_metrics(index: dict) -> dict:
    """Metrics of the index that are not finite numbers."""
    bad = {}
    for name, value in (index.get("metrics") or {}).items():
        try:
            if not math.isfinite(float(value)):
                bad[name] = value
        except (TypeError, ValueError):
            bad[name] = value
    return bad


def _details(problems: list[str]) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- {p}" for p in problems[:50]) or "none")


def checkpoint_checks(
    asset: dg.AssetsDefinition | dg.AssetKey | str, model: str, smoke: bool = True
) -> list[dg.AssetChecksDefinition]:
    """The checkpoint checks of one training asset publishing as registry model `model`
    (`smoke`: add the load + forward check; needs a smoke test in training/smoke.py)."""
    key = asset.key if isinstance(asset, dg.AssetsDefinition) else dg.AssetKey.from_coercible(asset)

    @dg.asset_check(
        asset=key,
        name=FILES,
        description=f"The latest {model} checkpoint's files exist with the sizes and sha256 "
        "recorded in its index.json.",
    )
    def files_check(store: dg.ResourceParam[ArtifactStore]) -> dg.AssetCheckResult:
        found = _latest(store, model)
        if isinstance(found, dg.AssetCheckResult):
            return found
        version, prefix, index = found
        problems = verify_files(store, prefix, index)
        return dg.AssetCheckResult(
            passed=not problems,
            metadata={
                "version": version,
                "uri": dg.MetadataValue.url(store.uri(prefix)),
                "files": len(index.get("files", {})),
                "bytes": sum(e.get("bytes", 0) for e in index.get("files", {}).values()),
                "problems": len(problems),
                "details": _details(problems),
            },
        )

    @dg.asset_check(
        asset=key,
        name=METRICS,
        description=f"The latest {model} checkpoint's recorded metrics (losses) are finite.",
    )
    def metrics_check(store: dg.ResourceParam[ArtifactStore]) -> dg.AssetCheckResult:
        found = _latest(store, model)
        if isinstance(found, dg.AssetCheckResult):
            return found
        version, _, index = found
        bad = non_finite_metrics(index)
        metrics = index.get("metrics") or {}
        return dg.AssetCheckResult(
            passed=not bad,
            metadata={
                "version": version,
                "global_step": index.get("global_step"),
                "metrics": dg.MetadataValue.json(
                    {k: v if k not in bad else str(v) for k, v in metrics.items()}
                ),
                "non_finite": dg.MetadataValue.json({k: str(v) for k, v in bad.items()}),
            },
        )

    checks = [files_check, metrics_check]
    if not smoke:
        return checks

    @dg.asset_check(
        asset=key,
        name=LOADS,
        description=f"The latest {model} checkpoint loads and runs one forward pass with finite "
        "outputs (training/smoke.py).",
    )
    def loads_check(store: dg.ResourceParam[ArtifactStore]) -> dg.AssetCheckResult:
        from training.smoke import smoke_test

        found = _latest(store, model)
        if isinstance(found, dg.AssetCheckResult):
            return found
        version, prefix, _ = found
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="wonderforge-check-") as tmp:
            try:
                folder = fetch_published(store, prefix, Path(tmp) / "checkpoint")
                outputs = smoke_test(model, folder)
            except Exception as error:  # any failure to load or run is the check's finding
                return dg.AssetCheckResult(
                    passed=False,
                    metadata={
                        "version": version,
                        "error": f"{type(error).__name__}: {error}"[:2000],
                    },
                )
        return dg.AssetCheckResult(
            passed=True,
            metadata={
                "version": version,
                "seconds": round(time.monotonic() - start, 2),
                "outputs": dg.MetadataValue.json({k: float(v) for k, v in outputs.items()}),
            },
        )

    return [*checks, loads_check]
