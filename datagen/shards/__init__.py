"""Webdataset shards of clips: schema v1, atomic shard-set writer, manifests, readers, checks."""

from datagen.shards.clip_objects import read_clip_object, write_clip_object
from datagen.shards.integrity import IntegrityReport, check_shard_set
from datagen.shards.manifest import (
    MANIFEST_NAME,
    Manifest,
    ShardEntry,
    load_manifest,
    manifest_key,
    published_sets,
)
from datagen.shards.reader import ErrorPolicy, iter_manifest_clips, iter_shard, read_clips
from datagen.shards.schema import (
    SCHEMA_VERSION,
    EncodeOptions,
    SchemaVersionError,
    ShardFormatError,
    decode_clip,
    encode_clip,
)
from datagen.shards.writer import ShardSetWriter, write_shard_set

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "EncodeOptions",
    "ErrorPolicy",
    "IntegrityReport",
    "Manifest",
    "SchemaVersionError",
    "ShardEntry",
    "ShardFormatError",
    "ShardSetWriter",
    "check_shard_set",
    "decode_clip",
    "encode_clip",
    "iter_manifest_clips",
    "iter_shard",
    "load_manifest",
    "manifest_key",
    "published_sets",
    "read_clip_object",
    "read_clips",
    "write_clip_object",
    "write_shard_set",
]
