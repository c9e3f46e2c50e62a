"""Sensors. `inbox_sensor`: new videos (files or folders) in the inbox become `videos`
partitions, each with a run of `ingest_video`.

The inbox is `WONDERFORGE_INBOX` (a local directory or an s3:// prefix; S3 settings from the
environment), default `$WONDERFORGE_HOME/inbox`. See `datagen.ingest.registry` for what counts as
an item and how its partition key is made (sanitized stem + 8 hex of sha1(uri, size)).
"""

from __future__ import annotations

import os

import dagster as dg

from assets.partitions import VIDEOS
from datagen.ingest.registry import list_inbox, register_item
from datagen.store import ArtifactStore
from orchestration.home import project_home
from orchestration.jobs import ingest_video_job

INBOX_ENV = "WONDERFORGE_INBOX"


def inbox_location() -> str:
    """The inbox URI or path: `WONDERFORGE_INBOX`, else `$WONDERFORGE_HOME/inbox`."""
    return os.environ.get(INBOX_ENV) or str(project_home() / "inbox")


@dg.sensor(
    job=ingest_video_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Adds a `videos` partition (and an ingest_video run) for every new video file "
    "or folder in the inbox (WONDERFORGE_INBOX: directory or s3:// prefix).",
)
def inbox_sensor(context: dg.SensorEvaluationContext, store: dg.ResourceParam[ArtifactStore]):
    inbox = inbox_location()
    try:
        items = list_inbox(inbox)
    except (FileNotFoundError, OSError) as error:
        return dg.SkipReason(f"inbox unavailable: {error}")
    known = set(context.instance.get_dynamic_partitions(VIDEOS.name))
    new = []
    for item in items:
        if item.item_id in known or item.item_id in new:
            continue
        register_item(store, item)
        new.append(item.item_id)
    if not new:
        return dg.SkipReason(f"no new items in {inbox} ({len(items)} known)")
    context.log.info(f"new inbox items: {', '.join(new)}")
    return new_partitions(VIDEOS, new)


def new_partitions(partitions: dg.DynamicPartitionsDefinition, keys: list[str]) -> dg.SensorResult:
    """Add ``keys`` to a dynamic partitions definition and request one run per key (run key =
    partition key, so a key is never run twice by the sensor)."""
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=key, run_key=key) for key in keys],
        dynamic_partitions_requests=[partitions.build_add_request(keys)],
    )


SENSORS = [inbox_sensor]
