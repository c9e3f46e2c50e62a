"""The one Dagster `Definitions` of the platform (`dagster dev -m orchestration.definitions`)."""

import dagster as dg

from assets import ingest, platform, synthetic, training_assets
from orchestration.jobs import JOBS
from orchestration.resources import artifact_store, training_launcher
from orchestration.sensors import SENSORS

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([platform, synthetic, training_assets, ingest]),
    jobs=JOBS,
    sensors=SENSORS,
    resources={"store": artifact_store, "launcher": training_launcher},
)
