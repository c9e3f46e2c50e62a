"""Reusable asset checks. `shard_integrity`: every published shard set matches its manifest."""

import dagster as dg

from datagen.shards import check_shard_set, published_sets
from datagen.store import ArtifactStore

SHARD_INTEGRITY = "shard_integrity"


def shard_integrity_result(
    store: ArtifactStore, prefixes: list[str], asset_key: dg.AssetKey | None = None
) -> dg.AssetCheckResult:
    """Check shard sets (existence, sizes, sha256, sample counts) and summarise as a result."""
    reports = [check_shard_set(store, prefix) for prefix in prefixes]
    problems = [problem for report in reports for problem in report.problems]
    shown = "\n".join(f"- {p}" for p in problems[:50]) or "none"
    return dg.AssetCheckResult(
        check_name=SHARD_INTEGRITY,
        asset_key=asset_key,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "shard_sets": len(reports),
            "shards": sum(r.shards for r in reports),
            "samples": sum(r.samples for r in reports),
            "bytes": sum(r.bytes for r in reports),
            "problems": len(problems),
            "details": dg.MetadataValue.md(shown),
        },
    )


def shard_integrity_spec(asset_key: dg.AssetKey | str) -> dg.AssetCheckSpec:
    """Declare the check on a shard asset that yields `shard_integrity_result` itself."""
    return dg.AssetCheckSpec(
        SHARD_INTEGRITY,
        asset=asset_key,
        description="Published shard sets match their manifests (objects, sizes, sha256, counts).",
    )


def build_shard_integrity_check(
    asset_key: dg.AssetKey | str, root_prefix: str
) -> dg.AssetChecksDefinition:
    """A standalone check over every shard set published under `root_prefix` (all partitions)."""

    @dg.asset_check(
        asset=asset_key,
        name=f"{SHARD_INTEGRITY}_all",
        description=f"Every shard set under `{root_prefix}` matches its manifest.",
    )
    def _check(store: dg.ResourceParam[ArtifactStore]) -> dg.AssetCheckResult:
        result = shard_integrity_result(store, published_sets(store, root_prefix))
        return dg.AssetCheckResult(
            passed=result.passed, severity=result.severity, metadata=result.metadata
        )

    return _check
