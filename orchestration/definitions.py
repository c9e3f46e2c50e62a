"""The one Dagster `Definitions` of the platform (`dagster dev -m orchestration.definitions`)."""

from __future__ import annotations

import dagster as dg

from assets.platform import platform_report
from orchestration.jobs import demo_job
from orchestration.resources import artifact_store

defs = dg.Definitions(
    assets=[platform_report],
    jobs=[demo_job],
    resources={"store": artifact_store},
)
