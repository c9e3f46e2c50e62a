"""``WorldSpec``: a world is fully described by its family, seed and parameters (JSON)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

SPEC_VERSION = 1


@dataclass(frozen=True)
class WorldSpec:
    """family: "indoor" | "outdoor" | "tabletop"; seed: int; params: family overrides (JSON
    values; see each family's ``DEFAULTS``)."""

    family: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    version: int = SPEC_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "seed": int(self.seed),
            "params": dict(self.params),
            "version": self.version,
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): equal specs give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorldSpec:
        unknown = sorted(set(data) - {"family", "seed", "params", "version"})
        if unknown:
            raise ValueError(f"world spec has unknown fields {unknown}")
        version = int(data.get("version", SPEC_VERSION))
        if version != SPEC_VERSION:
            raise ValueError(f"world spec version {version} is not {SPEC_VERSION}")
        return cls(str(data["family"]), int(data["seed"]), dict(data.get("params", {})), version)

    @classmethod
    def from_json(cls, text: str) -> WorldSpec:
        return cls.from_dict(json.loads(text))

    @property
    def world_id(self) -> str:
        """Stable id usable as a file name or sample key: ``family-seed-hash8``."""
        digest = hashlib.sha1(self.to_json().encode()).hexdigest()[:8]
        return f"{self.family}-{int(self.seed)}-{digest}"


def resolve_params(spec: WorldSpec, defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``spec.params``; unknown keys raise ValueError."""
    unknown = sorted(set(spec.params) - set(defaults))
    if unknown:
        raise ValueError(
            f"{spec.family} world: unknown params {unknown}; known: {sorted(defaults)}"
        )
    return {**defaults, **spec.params}
