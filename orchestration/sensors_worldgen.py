"""`world_inbox_sensor` (stopped by default): every folder of the world inbox holding an image and a
`prompts.txt` (and optionally `settings.json` with request fields: levels, p, centres, steps,
seed, size, zoom_mode) becomes a world request — stored under `requests/worlds/<id>/` — and a
`world_requests` partition with a `generated_worlds` run. Ids derive from the content, so a
folder is registered once however often the sensor runs.

The inbox is `WONDERFORGE_WORLD_INBOX` (a local directory), default
`$WONDERFORGE_HOME/world_inbox`. Register with `sensors=[*SENSORS, *WORLDGEN_SENSORS]`.
"""

from __future__ import annotations

import json
import os

import dagster as dg

from assets.partitions import WORLD_REQUESTS
from assets.worlds_generated import generated_worlds
from datagen.store import ArtifactStore
from datagen.world_requests import (
    WorldRequestError,
    inbox_items,
    request_from_files,
    request_id,
    save_request,
)
from orchestration.home import project_home
from orchestration.sensors import new_partitions

WORLD_INBOX_ENV = "WONDERFORGE_WORLD_INBOX"
SETTINGS_FILE = "settings.json"


def world_inbox_location() -> str:
    """`WONDERFORGE_WORLD_INBOX`, else `$WONDERFORGE_HOME/world_inbox`."""
    return os.environ.get(WORLD_INBOX_ENV) or str(project_home() / "world_inbox")


@dg.sensor(
    target=[generated_worlds],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Adds a `world_requests` partition (and a generated_worlds run) for every new "
    "folder with an image and prompts.txt in the world inbox (WONDERFORGE_WORLD_INBOX).",
)
def world_inbox_sensor(context: dg.SensorEvaluationContext, store: dg.ResourceParam[ArtifactStore]):
    inbox = world_inbox_location()
    try:
        items = inbox_items(inbox)
    except (FileNotFoundError, OSError) as error:
        return dg.SkipReason(f"world inbox unavailable: {error}")
    known = set(context.instance.get_dynamic_partitions(WORLD_REQUESTS.name))
    new = []
    for image, prompts in items:
        settings_path = image.parent / SETTINGS_FILE
        try:
            settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
            data, suffix, request = request_from_files(image, prompts, **settings)
        except (WorldRequestError, TypeError, json.JSONDecodeError) as error:
            context.log.warning(f"skipping {image.parent}: {error}")
            continue
        rid = request_id(data, request)
        if rid in known or rid in new:
            continue
        save_request(store, data, suffix, request)
        new.append(rid)
    if not new:
        return dg.SkipReason(f"no new world requests in {inbox} ({len(items)} folders)")
    context.log.info(f"new world requests: {', '.join(new)}")
    return new_partitions(WORLD_REQUESTS, new)


WORLDGEN_SENSORS = [world_inbox_sensor]
