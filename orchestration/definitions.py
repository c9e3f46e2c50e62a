"""The one Dagster `Definitions` of the platform (`dagster dev -m orchestration.definitions`)."""

import dagster as dg

from assets import platform, synthetic
from orchestration.jobs import JOBS
from orchestration.resources import artifact_store

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([platform, synthetic]),
    jobs=JOBS,
    resources={"store": artifact_store},
)
