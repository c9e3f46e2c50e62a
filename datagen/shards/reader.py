"""Reading published shard sets: samples, clips, and the error policy for bad samples."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from datagen.clips import Clip
from datagen.shards.manifest import Manifest, load_manifest
from datagen.shards.schema import ShardFormatError, decode_clip
from datagen.shards.tario import iter_tar_samples
from datagen.store import ArtifactStore, StoreError

log = logging.getLogger(__name__)
ON_ERROR = ("raise", "skip")


@dataclass
class ErrorPolicy:
    """`raise` (default) stops at the first bad sample; `skip` logs it and counts it."""

    mode: str = "raise"
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    max_kept: int = 100

    def __post_init__(self):
        if self.mode not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {self.mode!r}")

    def handle(self, error: Exception) -> None:
        if self.mode == "raise":
            raise error
        self.skipped += 1
        if len(self.errors) < self.max_kept:
            self.errors.append(str(error))
        log.warning("skipping bad sample (%d so far): %s", self.skipped, error)


def iter_shard(
    store: ArtifactStore,
    key: str,
    expected_samples: int | None = None,
    policy: ErrorPolicy | None = None,
) -> Iterator[tuple[str, str, dict[str, bytes]]]:
    """Yield (where, sample_key, members) of one shard; `where` = "<shard uri>:<key>".

    A truncated tar, or fewer samples than the manifest promises, is reported through `policy`.
    """
    policy = policy or ErrorPolicy()
    uri = store.uri(key)
    count = 0
    try:
        with store.open_read(key) as stream:
            for sample_key, members in iter_tar_samples(stream, uri):
                count += 1
                yield f"{uri}:{sample_key}", sample_key, members
    except (ShardFormatError, StoreError) as error:
        policy.handle(
            error if isinstance(error, ShardFormatError) else ShardFormatError(str(error))
        )
        return
    if expected_samples is not None and count != expected_samples:
        policy.handle(
            ShardFormatError(f"{uri}: holds {count} samples, its manifest says {expected_samples}")
        )


def iter_manifest_clips(
    manifest: Manifest,
    store: ArtifactStore,
    fields: set[str] | None = None,
    policy: ErrorPolicy | None = None,
) -> Iterator[Clip]:
    """Decode every clip of a shard set in manifest order."""
    policy = policy or ErrorPolicy()
    for entry in manifest.shardlist:
        for where, _, members in iter_shard(
            store, manifest.shard_key(entry), entry.nsamples, policy
        ):
            try:
                yield decode_clip(members, where, fields)
            except ShardFormatError as error:
                policy.handle(error)


def read_clips(
    store: ArtifactStore, prefix: str, fields: set[str] | None = None, on_error: str = "raise"
) -> Iterator[Clip]:
    """All clips of the published shard set under `prefix`."""
    yield from iter_manifest_clips(
        load_manifest(store, prefix), store, fields, ErrorPolicy(on_error)
    )
