"""Deterministic tar writing and streaming tar reading of webdataset samples."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from datagen.shards.schema import ShardFormatError


class HashingWriter:
    """A write-only file wrapper that counts bytes and computes sha256 on the way through."""

    def __init__(self, sink: BinaryIO):
        self._sink: BinaryIO | None = sink
        self._hash = hashlib.sha256()
        self.bytes_written = 0

    def write(self, data: bytes) -> int:
        if self._sink is None:
            return len(data)
        self._sink.write(data)
        self._hash.update(data)
        self.bytes_written += len(data)
        return len(data)

    def detach(self) -> None:
        """Drop the sink: later writes (e.g. a tar stream's final flush) go nowhere."""
        self._sink = None

    def tell(self) -> int:
        return self.bytes_written

    def flush(self) -> None:
        pass

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def add_sample(tar: tarfile.TarFile, key: str, members: dict[str, bytes]) -> None:
    """Append one sample's members `<key>.<field>` with fixed metadata (reproducible bytes)."""
    for name in sorted(members):
        data = members[name]
        info = tarfile.TarInfo(f"{key}.{name}")
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o444
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(data))


def iter_tar_samples(stream: BinaryIO, where: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream (key, {field: bytes}) from a webdataset tar; consecutive members share a key.

    Raises ShardFormatError naming `where` and the last good key on a truncated/corrupt tar.
    """
    key: str | None = None
    members: dict[str, bytes] = {}
    last_good = "<start>"
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                base = info.name.rsplit("/", 1)[-1]
                if "." not in base:
                    raise ShardFormatError(f"{where}: member {info.name!r} has no field suffix")
                member_key, field = base.split(".", 1)
                if key is not None and member_key != key:
                    yield key, members
                    last_good, members = key, {}
                key = member_key
                handle = tar.extractfile(info)
                members[field] = handle.read() if handle else b""
                if len(members[field]) != info.size:
                    raise EOFError("member shorter than its header")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ShardFormatError(
            f"{where}: truncated or corrupt tar after sample {last_good!r} ({error})"
        ) from None
    if key is not None:
        yield key, members
