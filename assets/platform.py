"""`platform_report`: what the platform runs on, written to the artifact store."""

import datetime as dt

import dagster as dg

from datagen.store import ArtifactStore
from training.environment import environment_report

REPORT_PREFIX = "reports/platform"


def _markdown_table(rows: dict[str, object]) -> str:
    lines = ["| name | value |", "| --- | --- |"]
    lines += [f"| {key} | {value if value is not None else '—'} |" for key, value in rows.items()]
    return "\n".join(lines)


@dg.asset(
    group_name="platform",
    kinds={"python", "json"},
    code_version="1",
    description="Package versions, Python and accelerators of the environment runs execute in.",
)
def platform_report(
    context: dg.AssetExecutionContext, store: dg.ResourceParam[ArtifactStore]
) -> dg.MaterializeResult:
    report = environment_report()
    report["artifact_store"] = store.uri("")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    key = f"{REPORT_PREFIX}/{stamp}.json"
    store.put_json(key, report)
    store.put_json(f"{REPORT_PREFIX}/latest.json", report)
    accel = report["accelerators"]
    devices = ", ".join(d["name"] for d in accel["devices"]) or "none (CPU only)"
    context.log.info(f"platform report written to {store.uri(key)}")
    return dg.MaterializeResult(
        metadata={
            "uri": dg.MetadataValue.url(store.uri(key)),
            "python": report["python"],
            "cuda_available": accel["cuda_available"],
            "gpus": devices,
            "packages": dg.MetadataValue.md(_markdown_table(report["packages"])),
            "artifact_store": report["artifact_store"],
        }
    )
