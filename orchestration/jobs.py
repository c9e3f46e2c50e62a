"""Jobs. `demo` is the main job: the embedded default end to end (it grows with every capability)."""

from __future__ import annotations

import dagster as dg

DEMO_GROUPS = ("platform",)

demo_job = dg.define_asset_job(
    name="demo",
    selection=dg.AssetSelection.groups(*DEMO_GROUPS),
    description=(
        "End-to-end run on the embedded default: procedural worlds, tiny configs, local artifact "
        "store. Materializes every asset the platform has so far."
    ),
    tags={"wonderforge/kind": "demo"},
)
