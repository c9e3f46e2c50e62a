"""World specs kept in the artifact store, so a world id alone names a reproducible world."""

from __future__ import annotations

import numpy as np

from datagen.store import ArtifactStore, ObjectNotFound
from datagen.worlds.generate import FAMILIES
from datagen.worlds.spec import WorldSpec

SPEC_PREFIX = "worlds/specs"


def spec_key(world_id: str) -> str:
    return f"{SPEC_PREFIX}/{world_id}.json"


def save_spec(store: ArtifactStore, spec: WorldSpec) -> str:
    """Store `spec` under its world id (idempotent); returns the id."""
    key = spec_key(spec.world_id)
    if not store.exists(key):
        store.put_json(key, spec.to_dict())
    return spec.world_id


def load_spec(store: ArtifactStore, world_id: str) -> WorldSpec:
    """The spec of a registered world; a clear error for an unknown id."""
    try:
        return WorldSpec.from_dict(store.get_json(spec_key(world_id)))
    except ObjectNotFound:
        raise ObjectNotFound(
            f"world {world_id!r} is not registered: no {store.uri(spec_key(world_id))} "
            "(register worlds with `wonderforge add-worlds`)"
        ) from None


def sample_specs(count: int, seed: int = 0, families: list[str] | None = None) -> list[WorldSpec]:
    """`count` specs cycling through `families` (default: all), seeds drawn from `seed`."""
    families = list(families or FAMILIES)
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown world families {unknown}; expected some of {sorted(FAMILIES)}")
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=count)
    return [WorldSpec(families[i % len(families)], int(s)) for i, s in enumerate(seeds)]


def demo_specs() -> list[WorldSpec]:
    """The demo's embedded default: one world of each family."""
    return [WorldSpec(family, seed) for seed, family in enumerate(sorted(FAMILIES))]
