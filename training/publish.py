"""Publishing a trained model's export folder to the artifact store (index written last)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
import tempfile
from pathlib import Path

from datagen.store import ArtifactStore

INDEX = "index.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def publish_directory(local_dir: Path, store: ArtifactStore, prefix: str, info: dict) -> dict:
    """Upload every file of `local_dir` under `prefix`, then `index.json` (files, sizes, sha256,
    `info`). Readers treat a prefix without an index as absent, so a crash mid-upload publishes
    nothing."""
    local_dir = Path(local_dir)
    files = {}
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(local_dir).as_posix()
        store.put_file(posixpath.join(prefix, relative), path)
        files[relative] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    index = {
        "published": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": files,
        **info,
    }
    store.put_json(posixpath.join(prefix, INDEX), index)
    return index


def fetch_published(store: ArtifactStore, prefix: str, local_dir: Path | None = None) -> Path:
    """Download a published folder (verified against its index) and return the local path."""
    index = store.get_json(posixpath.join(prefix, INDEX))
    target = Path(local_dir or tempfile.mkdtemp(prefix="wonderforge-ckpt-"))
    for relative, entry in index["files"].items():
        path = store.get_file(posixpath.join(prefix, relative), target / relative)
        if _sha256(path) != entry["sha256"]:
            raise ValueError(f"{store.uri(posixpath.join(prefix, relative))}: sha256 mismatch")
    (target / INDEX).write_text(json.dumps(index, indent=2))
    return target
