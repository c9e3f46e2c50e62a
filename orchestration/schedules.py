"""The optional retraining schedule: off by default (docs/orchestration.md).

`retrain` re-materializes the `training` group (every unpartitioned training and evaluation
asset, in dependency order) on the shard sets published by then. `weekly_retrain` runs it on
Sundays at 03:00 UTC once someone turns it on in the UI (Automation → Schedules) or with
`dagster schedule start weekly_retrain`; until then it never launches anything.
"""

import dagster as dg

TRAINING_GROUP = "training"

retrain_job = dg.define_asset_job(
    name="retrain",
    selection=dg.AssetSelection.groups(TRAINING_GROUP),
    description="Retrain every model of the `training` group (and re-run its evaluations) on "
    "the shard sets published so far; each asset publishes a new checkpoint version.",
    tags={"wonderforge/kind": "training"},
)

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=retrain_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Optional weekly retraining (Sundays 03:00 UTC); stopped until turned on.",
)

SCHEDULES = [weekly_retrain]
