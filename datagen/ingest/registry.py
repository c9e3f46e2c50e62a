"""Inbox listing and the registry of videos to ingest (one entry per `videos` partition).

An inbox is a local directory or an `s3://bucket/prefix`. Items are video files directly in
it and folders (image folders, dataset layouts); names starting with '.' or ending in
.part/.tmp/.crdownload (uploads in progress) are skipped. An item's id is its sanitized stem plus
8 hex digits of sha1(uri, size), so the same file always maps to the same id, and a different
file uploaded under the same name gets a new one. The registry entry
`ingest/registry/<id>.json` says where the item lives; `fetch_item` makes it a local path.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from datagen.ingest.errors import IngestError
from datagen.ingest.plan import sanitize_id
from datagen.ingest.video import VIDEO_SUFFIXES
from datagen.store import ArtifactStore, store_from_env_uri

REGISTRY_PREFIX = "ingest/registry"
_SKIP_SUFFIXES = (".part", ".tmp", ".crdownload")


@dataclass(frozen=True)
class InboxItem:
    """name (file or folder name), uri (absolute path or s3:// URI), size (bytes; folders: total
    of their files), folder (True for folders)."""

    name: str
    uri: str
    size: int
    folder: bool = False

    @property
    def item_id(self) -> str:
        stem = Path(self.name).stem if not self.folder else self.name
        digest = hashlib.sha1(f"{self.uri}\0{self.size}".encode()).hexdigest()[:8]
        return f"{sanitize_id(stem)[:40]}-{digest}"


def _visible(name: str) -> bool:
    return not name.startswith(".") and not name.lower().endswith(_SKIP_SUFFIXES)


def _local_items(root: Path) -> list[InboxItem]:
    if not root.is_dir():
        raise FileNotFoundError(f"inbox {root} is not a directory")
    items = []
    for p in sorted(root.iterdir()):
        if not _visible(p.name):
            continue
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            items.append(InboxItem(p.name, str(p.resolve()), p.stat().st_size))
        elif p.is_dir():
            size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
            items.append(InboxItem(p.name, str(p.resolve()), size, folder=True))
    return items


def _s3_items(uri: str) -> list[InboxItem]:
    store = store_from_env_uri(uri)
    files: dict[str, int] = {}
    folders: dict[str, int] = {}
    for key in store.list(""):
        head = key.split("/", 1)[0]
        if not _visible(head):
            continue
        if "/" in key:
            folders[head] = folders.get(head, 0) + store.size(key)
        elif Path(key).suffix.lower() in VIDEO_SUFFIXES:
            files[key] = store.size(key)
    base = uri.rstrip("/")
    items = [InboxItem(k, f"{base}/{k}", s) for k, s in files.items()]
    items += [InboxItem(k, f"{base}/{k}", s, folder=True) for k, s in folders.items()]
    return sorted(items, key=lambda i: i.name)


def list_inbox(inbox: str | Path) -> list[InboxItem]:
    """Items of a local inbox directory or an s3:// prefix, sorted by name."""
    text = str(inbox)
    if text.lower().startswith("s3://"):
        return _s3_items(text)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return _local_items(Path(text))


def registry_key(item_id: str) -> str:
    return f"{REGISTRY_PREFIX}/{item_id}.json"


def register_item(store: ArtifactStore, item: InboxItem) -> str:
    """Record `item` in the registry (idempotent); returns its id (the partition key)."""
    key = registry_key(item.item_id)
    if not store.exists(key):
        store.put_json(key, asdict(item))
    return item.item_id


def registered_item(store: ArtifactStore, item_id: str) -> InboxItem:
    """The registry entry of `item_id`; IngestError naming it when unknown."""
    key = registry_key(item_id)
    if not store.exists(key):
        raise IngestError(item_id, f"not registered (no {store.uri(key)}); add it to the inbox")
    return InboxItem(**store.get_json(key))


def fetch_item(item: InboxItem, dest: Path) -> Path:
    """A local path to the item: the path itself, or an S3 download into `dest`."""
    if not item.uri.lower().startswith("s3://"):
        path = Path(item.uri)
        if not path.exists():
            raise IngestError(path, "no such file or directory (moved or deleted from the inbox?)")
        return path
    parent, name = item.uri.rstrip("/").rsplit("/", 1)
    store = store_from_env_uri(parent)
    target = Path(dest) / name
    if not item.folder:
        return store.get_file(name, target)
    keys = store.list(name)
    if not keys:
        raise IngestError(item.uri, "folder is empty or gone")
    for key in keys:
        store.get_file(key, Path(dest) / key)
    return target
