"""Manifest-versus-objects integrity of a published shard set."""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field

from datagen.shards.manifest import load_manifest
from datagen.store import ArtifactStore


@dataclass
class IntegrityReport:
    """Result of `check_shard_set`: `problems` is empty when the set is intact."""

    uri: str
    shards: int = 0
    samples: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _count_samples(store: ArtifactStore, key: str) -> int:
    keys: set[str] = set()
    with store.open_read(key) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for info in tar:
            if info.isfile():
                keys.add(info.name.rsplit("/", 1)[-1].split(".", 1)[0])
    return len(keys)


def check_shard_set(
    store: ArtifactStore, prefix: str, verify_checksums: bool = True
) -> IntegrityReport:
    """Check that every shard in the manifest exists with the recorded size, sha256 and count."""
    manifest = load_manifest(store, prefix)
    report = IntegrityReport(uri=store.uri(prefix), shards=len(manifest.shardlist))
    for entry in manifest.shardlist:
        key = manifest.shard_key(entry)
        uri = store.uri(key)
        if not store.exists(key):
            report.problems.append(f"{uri}: missing")
            continue
        size = store.size(key)
        if size != entry.filesize:
            report.problems.append(f"{uri}: {size} bytes, manifest says {entry.filesize}")
            continue
        if verify_checksums and store.sha256(key) != entry.sha256:
            report.problems.append(f"{uri}: sha256 differs from the manifest")
            continue
        try:
            count = _count_samples(store, key)
        except (tarfile.TarError, EOFError, OSError) as error:
            report.problems.append(f"{uri}: unreadable tar ({error})")
            continue
        if count != entry.nsamples:
            report.problems.append(f"{uri}: {count} samples, manifest says {entry.nsamples}")
        report.samples += count
        report.bytes += size
    return report
