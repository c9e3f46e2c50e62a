"""Console progress for in-process runs: one line per step and per materialization."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from dagster import DagsterEventType, EventLogEntry


def _metadata_uri(entry: EventLogEntry) -> str | None:
    materialization = entry.asset_materialization
    if materialization is None:
        return None
    value = materialization.metadata.get("uri")
    return getattr(value, "value", None) or getattr(value, "url", None)


def progress_printer(stream=sys.stdout) -> tuple[Callable[[EventLogEntry], None], dict]:
    """An event listener that prints progress, and the summary dict it fills.

    summary: {"materialized": {asset_key: uri|None}, "failed": [step_key, ...]}
    """
    started: dict[str, float] = {}
    summary: dict = {"materialized": {}, "failed": []}

    def on_event(entry: EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        kind = event.event_type
        step = event.step_key or ""
        if kind == DagsterEventType.STEP_START:
            started[step] = time.monotonic()
            print(f"  ▶ {step} …", file=stream, flush=True)
        elif kind == DagsterEventType.STEP_SUCCESS:
            seconds = time.monotonic() - started.get(step, time.monotonic())
            print(f"  ✔ {step} ({seconds:.1f} s)", file=stream, flush=True)
        elif kind == DagsterEventType.STEP_FAILURE:
            summary["failed"].append(step)
            error = event.step_failure_data.error if event.step_failure_data else None
            message = error.message.strip() if error else "failed"
            print(f"  ✘ {step}: {message}", file=stream, flush=True)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            key = entry.asset_materialization.asset_key.to_user_string()
            partition = entry.asset_materialization.partition
            label = f"{key}[{partition}]" if partition else key
            summary["materialized"][label] = _metadata_uri(entry)

    return on_event, summary
