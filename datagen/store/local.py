"""`LocalStore`: an artifact store in a local directory (the default)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from datagen.store.base import (
    CHUNK,
    TEMP_PREFIX,
    ArtifactStore,
    is_visible_key,
    normalize_key,
    normalize_prefix,
)
from datagen.store.errors import InvalidKey, ObjectNotFound
from datagen.store.retry import retry_transient


class LocalStore(ArtifactStore):
    """Objects are files under `root`; writes go to a `.tmp-` sibling, fsync, then os.replace."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / normalize_key(key)

    def _missing(self, key: str) -> ObjectNotFound:
        return ObjectNotFound(f"no object at {self.uri(key)} (key {key!r} in store {self.root})")

    def uri(self, key: str = "") -> str:
        return (self._path(key) if key else self.root).as_uri()

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._missing(key) from None

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        path = self._path(key)
        tmp = path.parent / f"{TEMP_PREFIX}{path.name}-{secrets.token_hex(6)}"
        for attempt in range(3):  # a concurrent delete() may prune the fresh directory
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # honours umask
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        f = os.fdopen(fd, "wb")
        try:
            yield f
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        finally:
            f.close()
            tmp.unlink(missing_ok=True)

    @retry_transient
    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    @retry_transient
    def list(self, prefix: str = "") -> list[str]:
        prefix = normalize_prefix(prefix)
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if is_visible_key(key):
                    keys.append(key)
        return sorted(keys)

    @retry_transient
    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()
        self._prune(path.parent)

    @retry_transient
    def delete_prefix(self, prefix: str) -> int:
        prefix = normalize_prefix(prefix)
        if not prefix:
            raise InvalidKey("delete_prefix needs a non-empty prefix (refusing to wipe the store)")
        keys = self.list(prefix)
        base = self.root / prefix
        if base.is_dir():
            shutil.rmtree(base)  # also removes stray temp files of crashed writers
        self._prune(base.parent)
        return len(keys)

    @retry_transient
    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise self._missing(key)
        return path.stat().st_size

    @retry_transient
    def copy(self, src_key: str, dst_key: str) -> None:
        src = self._path(src_key)
        try:
            fsrc = open(src, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._missing(src_key) from None
        with fsrc, self.open_write(dst_key) as fdst:
            shutil.copyfileobj(fsrc, fdst, CHUNK)

    def _prune(self, directory: Path) -> None:
        """Remove now-empty directories between `directory` and the root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
