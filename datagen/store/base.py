"""The `ArtifactStore` interface: one API over a local directory and S3.

Keys are '/'-separated relative paths (``shards/train/000000.tar``). Writes are atomic: a reader
sees either the previous object or the complete new one, never a partial one.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from datagen.store.errors import InvalidKey
from datagen.store.retry import retry_transient

TEMP_PREFIX = ".tmp-"  # reserved name prefix of in-progress local writes; never listed
CHUNK = 1 << 20


def normalize_key(key: str) -> str:
    """Return `key` if it is a valid relative '/'-separated key, else raise InvalidKey."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"invalid store key {key!r}: expected a non-empty str")
    if key.startswith("/") or "\\" in key or "\x00" in key or (len(key) > 1 and key[1] == ":"):
        raise InvalidKey(f"invalid store key {key!r}: keys are relative '/'-separated paths")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKey(f"invalid store key {key!r}: empty, '.' or '..' path segment")
        if part.startswith(TEMP_PREFIX):
            raise InvalidKey(f"invalid store key {key!r}: {TEMP_PREFIX!r} names are reserved")
    return key


def normalize_prefix(prefix: str) -> str:
    """Return '' (everything) or a directory prefix ending in '/'."""
    if prefix == "":
        return ""
    if not isinstance(prefix, str):
        raise InvalidKey(f"invalid store prefix {prefix!r}: expected a str")
    return normalize_key(prefix.rstrip("/") if prefix != "/" else prefix) + "/"


def is_visible_key(key: str) -> bool:
    """True for keys the API exposes (skips temp names, folder markers, odd keys)."""
    try:
        normalize_key(key)
    except InvalidKey:
        return False
    return True


class ArtifactStore(abc.ABC):
    """Blob store addressed by relative keys. Subclasses: LocalStore, S3Store."""

    # --- primitives every backend implements -------------------------------------------------
    @abc.abstractmethod
    def uri(self, key: str = "") -> str:
        """`file:///abs/path/key` or `s3://bucket/prefix/key`; '' gives the store root."""

    @abc.abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """Streaming binary reader (non-seekable on S3; fine for tarfile 'r|' / webdataset)."""

    @abc.abstractmethod
    def open_write(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """Context manager yielding a binary writer; the object appears only on clean exit."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys under the directory `prefix` (recursive); '' lists everything."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under the directory `prefix` (non-empty); return how many."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size of the object in bytes."""

    @abc.abstractmethod
    def copy(self, src_key: str, dst_key: str) -> None:
        """Atomically copy an object inside the store (server-side on S3)."""

    # --- helpers built on the primitives (whole operations: retried on transient errors) ---
    @retry_transient
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` under `key` atomically."""
        with self.open_write(key) as f:
            f.write(data)

    @retry_transient
    def get_bytes(self, key: str) -> bytes:
        """Whole object as bytes."""
        with self.open_read(key) as f:
            return f.read()

    @retry_transient
    def put_file(self, key: str, local_path: str | os.PathLike) -> None:
        """Upload a local file to `key` atomically."""
        with open(local_path, "rb") as src, self.open_write(key) as dst:
            shutil.copyfileobj(src, dst, CHUNK)

    @retry_transient
    def get_file(self, key: str, local_path: str | os.PathLike) -> Path:
        """Download `key` to `local_path` atomically (temp file + rename); return the path."""
        dst = Path(local_path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f"{TEMP_PREFIX}{dst.name}-{secrets.token_hex(6)}"
        try:
            with self.open_read(key) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
        return dst

    def put_json(self, key: str, obj: Any) -> None:
        """Store `obj` as pretty, key-sorted UTF-8 JSON."""
        text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        self.put_bytes(key, text.encode("utf-8"))

    def get_json(self, key: str) -> Any:
        """Parse the JSON object stored under `key`."""
        return json.loads(self.get_bytes(key).decode("utf-8"))

    @retry_transient
    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the object, streamed."""
        h = hashlib.sha256()
        with self.open_read(key) as f:
            for chunk in _chunks(f):
                h.update(chunk)
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri()!r})"


def _chunks(f: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk
