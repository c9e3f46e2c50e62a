"""One clip as one store object (a single-sample webdataset tar): the staging form of clips
before they are packed into shard sets."""

from __future__ import annotations

import tarfile

from datagen.clips import Clip
from datagen.shards.schema import EncodeOptions, ShardFormatError, decode_clip, encode_clip
from datagen.shards.tario import add_sample, iter_tar_samples
from datagen.store import ArtifactStore


def write_clip_object(
    store: ArtifactStore, key: str, clip: Clip, options: EncodeOptions | None = None
) -> int:
    """Write `clip` atomically to `key` (a .tar); returns the object's size in bytes."""
    members = encode_clip(clip, options or EncodeOptions())
    with store.open_write(key) as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
        add_sample(tar, clip.key, members)
    return store.size(key)


def read_clip_object(store: ArtifactStore, key: str, fields: set[str] | None = None) -> Clip:
    """Read back a clip written by `write_clip_object`."""
    where = store.uri(key)
    with store.open_read(key) as stream:
        samples = list(iter_tar_samples(stream, where))
    if len(samples) != 1:
        raise ShardFormatError(f"{where}: expected one clip, found {len(samples)}")
    sample_key, members = samples[0]
    return decode_clip(members, f"{where}:{sample_key}", fields)
