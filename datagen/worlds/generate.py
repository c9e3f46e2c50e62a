"""``generate_world``: dispatch a ``WorldSpec`` to its family builder."""

from __future__ import annotations

from collections.abc import Callable

from datagen.worlds.families.indoor import DEFAULTS as INDOOR_DEFAULTS
from datagen.worlds.families.indoor import build_indoor
from datagen.worlds.families.outdoor import DEFAULTS as OUTDOOR_DEFAULTS
from datagen.worlds.families.outdoor import build_outdoor
from datagen.worlds.families.tabletop import DEFAULTS as TABLETOP_DEFAULTS
from datagen.worlds.families.tabletop import build_tabletop
from datagen.worlds.spec import WorldSpec
from datagen.worlds.world import World

FAMILIES: dict[str, Callable[[WorldSpec], World]] = {
    "indoor": build_indoor,
    "outdoor": build_outdoor,
    "tabletop": build_tabletop,
}
FAMILY_DEFAULTS = {
    "indoor": INDOOR_DEFAULTS,
    "outdoor": OUTDOOR_DEFAULTS,
    "tabletop": TABLETOP_DEFAULTS,
}


def generate_world(spec: WorldSpec) -> World:
    """Build the world ``spec`` describes; the same spec always gives the same arrays."""
    if spec.family not in FAMILIES:
        raise ValueError(f"unknown world family {spec.family!r}; expected one of {list(FAMILIES)}")
    return FAMILIES[spec.family](spec)
