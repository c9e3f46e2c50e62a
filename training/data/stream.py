"""Streaming clips from published shard sets with webdataset (local or S3), DDP- and worker-safe.

Shards are split across DDP ranks and dataloader workers; when a stream has fewer shards than
ranks × workers, every reader walks all shards and keeps a disjoint stride of samples instead.
Streams repeat (`partitioned`: every reader cycles through its own disjoint part, reshuffled each
pass; `resampled`: shards drawn with replacement) and each epoch is cut to an explicit number of
batches, so every rank yields the same number of batches. Bad samples follow the `on_error`
policy (`raise`, or `skip`: logged with shard and key, and counted).
"""

from __future__ import annotations

import logging
import posixpath
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import webdataset as wds
from webdataset.utils import pytorch_worker_info

from datagen.shards import ErrorPolicy, ShardFormatError, decode_clip, iter_shard, load_manifest
from datagen.shards.manifest import MANIFEST_NAME
from datagen.store import ArtifactStore, store_from_env_uri

log = logging.getLogger(__name__)
SAMPLINGS = ("partitioned", "resampled")


@dataclass(frozen=True)
class ShardRef:
    """One shard of one published set: the set's store URI, the shard key, its sample count."""

    set_uri: str
    key: str
    nsamples: int


def set_root(uri: str) -> str:
    """A shard set's folder URI from its folder or manifest URI."""
    uri = uri.rstrip("/")
    return uri[: -len(MANIFEST_NAME) - 1] if uri.endswith("/" + MANIFEST_NAME) else uri


def resolve_shards(manifest_uris: list[str]) -> list[ShardRef]:
    """Every shard of every listed set (folder or manifest URIs; file://, paths or s3://)."""
    if not manifest_uris:
        raise ValueError("no shard sets given: pass at least one manifest URI")
    refs: list[ShardRef] = []
    for uri in manifest_uris:
        root = set_root(uri)
        manifest = load_manifest(store_from_env_uri(root), "")
        refs += [ShardRef(root, manifest.shard_key(e), e.nsamples) for e in manifest.shardlist]
    return refs


class _Stores:
    """Per-process cache of stores by set URI (stores are created lazily inside workers)."""

    def __init__(self):
        self._stores: dict[str, ArtifactStore] = {}

    def __call__(self, set_uri: str) -> ArtifactStore:
        if set_uri not in self._stores:
            self._stores[set_uri] = store_from_env_uri(set_uri)
        return self._stores[set_uri]


def _reader_slot() -> tuple[int, int]:
    rank, world, worker, workers = pytorch_worker_info()
    return rank * workers + worker, world * workers


def _buffered_shuffle(samples: Iterator, size: int, rng: random.Random) -> Iterator:
    """Shuffle through a buffer of `size` samples, drained completely at the end."""
    buffer: list = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        index = rng.randrange(size)
        buffer[index], sample = sample, buffer[index]
        yield sample
    rng.shuffle(buffer)
    yield from buffer


class _Reader:
    """Shard refs -> decoded clips -> task samples, for one reader (rank × worker)."""

    def __init__(self, transform, policy: ErrorPolicy, fields, seed: int):
        self.transform, self.policy, self.fields, self.seed = transform, policy, fields, seed
        self.stores = _Stores()

    def clips(self, refs: list[ShardRef], keep: Callable[[int], bool] = lambda i: True):
        index = 0
        for ref in refs:
            store = self.stores(ref.set_uri)
            for where, _, members in iter_shard(store, ref.key, ref.nsamples, self.policy):
                index += 1
                if not keep(index - 1):
                    continue
                try:
                    yield decode_clip(members, where, self.fields)
                except ShardFormatError as error:
                    self.policy.handle(error)

    def samples(self, clips: Iterator, rng: np.random.Generator) -> Iterator[dict]:
        for clip in clips:
            try:
                out = self.transform(clip, rng)
            except ValueError as error:
                self.policy.handle(ShardFormatError(f"{clip.key}: {error}"))
                continue
            yield from out if isinstance(out, list) else [out]


def _batches(batch_size: int, collate_fn: Callable):
    """Stage: full batches only, each emitted as soon as it is full (webdataset's `batched`
    waits for the next sample, which makes a reader decode into its next pass at epoch end)."""

    def stage(samples):
        batch: list = []
        for sample in samples:
            batch.append(sample)
            if len(batch) == batch_size:
                yield collate_fn(batch)
                batch = []

    return stage


def _partitioned_source(refs: list[ShardRef], reader: _Reader, shuffle_buffer: int):
    """Endless passes over this reader's own part of the data; parts are disjoint.

    With at least as many shards as readers, the shards are dealt out (one permutation per
    epoch, the same on every rank); otherwise every reader walks all shards in manifest order
    and keeps samples i with i % readers == its slot. Each pass is reshuffled and its shuffle
    buffer drained, so no sample repeats before the reader's whole part has been seen.
    """

    def source():
        slot, slots = _reader_slot()
        rng = np.random.default_rng([reader.seed, slot])
        order = random.Random(reader.seed)
        if len(refs) >= slots:
            own = list(refs)
            order.shuffle(own)
            own, keep = own[slot::slots], (lambda i: True)
        else:
            own, keep = list(refs), (lambda i: i % slots == slot)
        local = random.Random(reader.seed * 7_919 + slot)
        while True:
            if len(refs) >= slots:
                local.shuffle(own)
            samples = reader.samples(reader.clips(own, keep), rng)
            count = 0
            for sample in _buffered_shuffle(samples, shuffle_buffer, local):
                count += 1
                yield sample
            if count == 0:
                raise ShardFormatError(f"reader {slot} of {slots}: its part of the data is empty")

    return source


def _resampled_source(refs: list[ShardRef], reader: _Reader, shuffle_buffer: int):
    """Endless samples from shards drawn with replacement (per-reader seeded)."""

    def source():
        slot, _ = _reader_slot()
        rng = np.random.default_rng([reader.seed, slot])
        local = random.Random(reader.seed * 7_919 + slot)

        def drawn():
            while True:
                yield from reader.clips([refs[local.randrange(len(refs))]])

        yield from _buffered_shuffle(reader.samples(drawn(), rng), shuffle_buffer, local)

    return source


def clip_pipeline(
    shards: list[ShardRef],
    transform: Callable,
    batch_size: int,
    batches_per_worker: int,
    collate_fn: Callable,
    seed: int = 0,
    sampling: str = "partitioned",
    shuffle_buffer: int = 64,
    on_error: str = "raise",
    fields: set[str] | None = None,
) -> wds.DataPipeline:
    """An endless, epoch-cut webdataset pipeline of collated training batches."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if not shards:
        raise ValueError("the shard sets hold no shards")
    if batch_size < 1 or batches_per_worker < 1:
        raise ValueError("batch_size and batches_per_worker must be >= 1")
    reader = _Reader(transform, ErrorPolicy(on_error), fields, seed)
    make_source = _partitioned_source if sampling == "partitioned" else _resampled_source
    return wds.DataPipeline(
        make_source(shards, reader, shuffle_buffer),
        _batches(batch_size, collate_fn),
    ).with_epoch(nbatches=batches_per_worker)


def describe_sets(shards: list[ShardRef]) -> dict[str, int]:
    """{set folder name: samples} for logs and run metadata."""
    totals: dict[str, int] = {}
    for ref in shards:
        name = posixpath.basename(ref.set_uri.rstrip("/"))
        totals[name] = totals.get(name, 0) + ref.nsamples
    return totals
