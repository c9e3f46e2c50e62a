"""Declarative automation and backfill batching shared by the data assets (docs/orchestration.md).

`CHEAP_DERIVED`: the condition of cheap packaging assets (shard sets derived from one upstream
partition). With the automation daemon on (`dagster dev` runs it), a shard set is requested as soon
as its upstream partition is newly materialized, and only for that partition. Nothing expensive
(training, GPU inference) carries a condition: those run from jobs, sensors or the schedule.

`WORLD_BATCHES`: a backfill over many `worlds` partitions runs them in batches of
`WORLDS_PER_RUN` per run (one process per batch instead of one per world); the bodies of the
synthetic assets loop over `context.partition_keys`, so a batch is a partition key range.
"""

import warnings

import dagster as dg

CHEAP_DERIVED = dg.AutomationCondition.eager()

WORLDS_PER_RUN = 4
WORLD_BATCHES = dg.BackfillPolicy.multi_run(max_partitions_per_run=WORLDS_PER_RUN)

# `backfill_policy` is a beta parameter of `@asset`; its warning would repeat at every load.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
