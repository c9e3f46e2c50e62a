"""Shared body of the shard-set assets: pack a partition's clip objects into a published set."""

from collections.abc import Iterator

import dagster as dg

from assets.checks import shard_integrity_result
from datagen.shards import EncodeOptions, read_clip_object, write_shard_set
from datagen.store import ArtifactStore


class ShardSetConfig(dg.Config):
    """Encoding and shard size of a partition's shard set."""

    rgb_format: str = "png"
    jpeg_quality: int = 95
    target_shard_mb: int = 256


def write_clip_objects(
    store: ArtifactStore,
    clip_keys: list[str],
    prefix: str,
    dataset: str,
    partition: str,
    config: ShardSetConfig,
    extra_metadata: dict | None = None,
) -> dict:
    """Write the clips (sorted by key) as the set under `prefix`; return its materialization
    metadata (manifest URI, counts, write id, `extra_metadata`)."""
    manifest = write_shard_set(
        store,
        prefix,
        (read_clip_object(store, key) for key in sorted(clip_keys)),
        dataset=dataset,
        partition=partition,
        options=EncodeOptions(rgb_format=config.rgb_format, jpeg_quality=config.jpeg_quality),
        target_shard_bytes=config.target_shard_mb * 2**20,
        progress=False,
    )
    return {
        "uri": dg.MetadataValue.url(store.uri(f"{prefix}/manifest.json")),
        "samples": manifest.num_samples,
        "shards": len(manifest.shardlist),
        "bytes": manifest.num_bytes,
        "write_id": manifest.write_id,
        **(extra_metadata or {}),
    }


def publish_clip_objects(
    store: ArtifactStore,
    clip_keys: list[str],
    prefix: str,
    dataset: str,
    partition: str,
    config: ShardSetConfig,
    extra_metadata: dict | None = None,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Write the clips (sorted by key) as the set under `prefix`; yield the materialization
    (manifest URI, counts) and the `shard_integrity` check result."""
    metadata = write_clip_objects(
        store, clip_keys, prefix, dataset, partition, config, extra_metadata
    )
    yield dg.MaterializeResult(metadata=metadata)
    yield shard_integrity_result(store, [prefix])
