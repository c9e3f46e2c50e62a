"""Atomic writing of a partition's shard set.

Layout under `prefix` (e.g. `shards/synthetic/world-0007`):

    manifest.json                   published pointer, replaced atomically, written last
    v-<write_id>/shard-000000.tar   immutable shards of one write, each written atomically

A crash before the manifest is replaced leaves the previous set published and untouched; the
orphaned `v-*` folder is invisible to readers and removed by the next successful write.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import tarfile
import uuid
from collections.abc import Iterable
from contextlib import ExitStack

from tqdm.auto import tqdm

from datagen.clips import Clip
from datagen.shards.manifest import (
    Manifest,
    ShardEntry,
    manifest_key,
    summarise_provenance,
)
from datagen.shards.schema import EncodeOptions, encode_clip
from datagen.shards.tario import HashingWriter, add_sample
from datagen.store import ArtifactStore

VERSION_PREFIX = "v-"
DEFAULT_SHARD_BYTES = 256 * 2**20


class _OpenShard:
    """One shard being streamed into the store."""

    def __init__(self, store: ArtifactStore, key: str):
        self.key = key
        self._stack = ExitStack()
        sink = self._stack.enter_context(store.open_write(key))
        self.writer = HashingWriter(sink)
        self.tar = tarfile.open(fileobj=self.writer, mode="w|", format=tarfile.PAX_FORMAT)
        self.keys: list[str] = []

    def add(self, key: str, members: dict[str, bytes]) -> None:
        add_sample(self.tar, key, members)
        self.keys.append(key)

    def commit(self, url: str) -> ShardEntry:
        self.tar.close()
        self._stack.close()
        return ShardEntry(
            url=url,
            nsamples=len(self.keys),
            filesize=self.writer.bytes_written,
            sha256=self.writer.hexdigest(),
            first_key=self.keys[0],
            last_key=self.keys[-1],
        )

    def abort(self, error: BaseException) -> None:
        self.writer.detach()
        self.tar.close()
        self._stack.__exit__(type(error), error, error.__traceback__)


class ShardSetWriter:
    """Write clips into size-bounded shards, then publish the set with one atomic manifest write.

    Use as a context manager: leaving it normally publishes; an exception discards everything
    this writer uploaded and keeps the previously published set.
    """

    def __init__(
        self,
        store: ArtifactStore,
        prefix: str,
        dataset: str,
        partition: str,
        options: EncodeOptions | None = None,
        target_shard_bytes: int = DEFAULT_SHARD_BYTES,
        max_samples_per_shard: int | None = None,
    ):
        if target_shard_bytes <= 0:
            raise ValueError("target_shard_bytes must be positive")
        self.store, self.prefix = store, prefix.strip("/")
        self.dataset, self.partition = dataset, partition
        self.options = options or EncodeOptions()
        self.target_shard_bytes = target_shard_bytes
        self.max_samples_per_shard = max_samples_per_shard
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        self.write_id = f"{stamp}-{uuid.uuid4().hex[:8]}"
        self.version_dir = f"{VERSION_PREFIX}{self.write_id}"
        self._entries: list[ShardEntry] = []
        self._provenance: list[dict] = []
        self._seen_keys: set[str] = set()
        self._shard: _OpenShard | None = None
        self.manifest: Manifest | None = None

    def _key(self, url: str) -> str:
        return posixpath.join(self.prefix, url) if self.prefix else url

    def _next_url(self) -> str:
        return f"{self.version_dir}/shard-{len(self._entries):06d}.tar"

    def add(self, clip: Clip) -> None:
        if clip.key in self._seen_keys:
            raise ValueError(f"duplicate sample key {clip.key!r} in shard set {self.prefix!r}")
        members = encode_clip(clip, self.options)
        size = sum(len(v) for v in members.values()) + 1024 * (len(members) + 1)
        shard = self._shard
        if shard is not None and (
            shard.writer.bytes_written + size > self.target_shard_bytes
            or (self.max_samples_per_shard and len(shard.keys) >= self.max_samples_per_shard)
        ):
            self._close_shard()
        if self._shard is None:
            self._shard = _OpenShard(self.store, self._key(self._next_url()))
        self._shard.add(clip.key, members)
        self._seen_keys.add(clip.key)
        self._provenance.append(clip.provenance.to_dict())

    def _close_shard(self) -> None:
        self._entries.append(self._shard.commit(self._next_url()))
        self._shard = None

    def publish(self) -> Manifest:
        if self._shard is not None:
            self._close_shard()
        manifest = Manifest(
            dataset=self.dataset,
            partition=self.partition,
            write_id=self.write_id,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            encoding={
                "rgb": self.options.rgb_format,
                "jpeg_quality": self.options.jpeg_quality,
                "depth": self.options.depth_format,
            },
            shardlist=self._entries,
            provenance=summarise_provenance(self._provenance),
            prefix=self.prefix,
        )
        self.store.put_json(manifest_key(self.prefix), manifest.to_json())
        self.manifest = manifest
        self._remove_other_versions()
        return manifest

    def _remove_other_versions(self) -> None:
        for key in self.store.list(self.prefix):
            relative = key[len(self.prefix) + 1 :] if self.prefix else key
            top = relative.split("/", 1)[0]
            if top.startswith(VERSION_PREFIX) and top != self.version_dir:
                self.store.delete(key)

    def discard(self, error: BaseException | None = None) -> None:
        if self._shard is not None:
            self._shard.abort(error or RuntimeError("discarded"))
            self._shard = None
        self.store.delete_prefix(self._key(self.version_dir))

    def __enter__(self) -> ShardSetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.publish()
        else:
            self.discard(exc)


def write_shard_set(
    store: ArtifactStore,
    prefix: str,
    clips: Iterable[Clip],
    dataset: str,
    partition: str,
    progress: bool = True,
    **writer_options,
) -> Manifest:
    """Write `clips` (in the given order) as the published shard set under `prefix`."""
    with ShardSetWriter(store, prefix, dataset, partition, **writer_options) as writer:
        for clip in tqdm(clips, desc=f"shards {dataset}/{partition}", disable=not progress):
            writer.add(clip)
    return writer.manifest
