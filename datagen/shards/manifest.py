"""The manifest of a shard set: the published, atomic pointer to its shards (wids-compatible)."""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from datagen.shards.schema import SCHEMA_VERSION, ShardFormatError
from datagen.store import ArtifactStore, ObjectNotFound

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
WIDS_KIND = "wids-shard-index-v1"


@dataclass
class ShardEntry:
    """One shard: `url` is relative to the set's prefix (wids resolves it against the index)."""

    url: str
    nsamples: int
    filesize: int
    sha256: str
    first_key: str
    last_key: str


@dataclass
class Manifest:
    """A published shard set. `prefix` is its folder in the store (not serialised)."""

    dataset: str
    partition: str
    write_id: str
    created: str
    encoding: dict[str, Any]
    shardlist: list[ShardEntry]
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    prefix: str = ""

    @property
    def num_samples(self) -> int:
        return sum(entry.nsamples for entry in self.shardlist)

    @property
    def num_bytes(self) -> int:
        return sum(entry.filesize for entry in self.shardlist)

    def shard_key(self, entry: ShardEntry) -> str:
        return posixpath.join(self.prefix, entry.url) if self.prefix else entry.url

    def shard_keys(self) -> list[str]:
        return [self.shard_key(entry) for entry in self.shardlist]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("prefix")
        data.update(
            {
                "__kind__": WIDS_KIND,
                "wids_version": 1,
                "name": f"{self.dataset}/{self.partition}",
                "manifest_version": MANIFEST_VERSION,
                "num_samples": self.num_samples,
                "num_bytes": self.num_bytes,
            }
        )
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], prefix: str, where: str) -> Manifest:
        try:
            if data.get("manifest_version") != MANIFEST_VERSION:
                raise ShardFormatError(
                    f"{where}: manifest version {data.get('manifest_version')!r}, "
                    f"expected {MANIFEST_VERSION}"
                )
            if data.get("schema_version") != SCHEMA_VERSION:
                raise ShardFormatError(
                    f"{where}: shard schema version {data.get('schema_version')!r}, "
                    f"this reader reads version {SCHEMA_VERSION} only"
                )
            return cls(
                dataset=data["dataset"],
                partition=data["partition"],
                write_id=data["write_id"],
                created=data["created"],
                encoding=data["encoding"],
                shardlist=[ShardEntry(**entry) for entry in data["shardlist"]],
                provenance=data.get("provenance", {}),
                prefix=prefix,
            )
        except (KeyError, TypeError) as error:
            raise ShardFormatError(f"{where}: malformed manifest ({error})") from None


def manifest_key(prefix: str) -> str:
    return posixpath.join(prefix, MANIFEST_NAME) if prefix else MANIFEST_NAME


def load_manifest(store: ArtifactStore, prefix: str) -> Manifest:
    """Read the published manifest of the shard set under `prefix`."""
    key = manifest_key(prefix)
    where = store.uri(key)
    try:
        data = store.get_json(key)
    except ObjectNotFound:
        raise ObjectNotFound(f"{where}: no published shard set here (manifest missing)") from None
    except ValueError as error:
        raise ShardFormatError(f"{where}: malformed manifest JSON ({error})") from None
    return Manifest.from_json(data, prefix, where)


def summarise_provenance(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of source kinds, estimators and licenses, plus the scene ids of a set's clips."""
    return {
        "source_kinds": dict(Counter(r["source_kind"] for r in records)),
        "pose_estimators": dict(Counter(r["pose_estimator"] for r in records)),
        "depth_estimators": dict(Counter(r["depth_estimator"] for r in records)),
        "licenses": sorted({r["license"] for r in records}),
        "scene_ids": sorted({r["scene_id"] for r in records}),
        "generator_checkpoints": sorted(
            {r["generator_checkpoint"] for r in records if r.get("generator_checkpoint")}
        ),
    }


def published_sets(store: ArtifactStore, root: str) -> list[str]:
    """Prefixes of every published shard set under `root` (folders holding a manifest)."""
    suffix = "/" + MANIFEST_NAME
    return [key[: -len(suffix)] for key in store.list(root) if key.endswith(suffix)]
