"""The checkpoint registry: versioned published folders and a `latest` pointer per model.

Layout in the artifact store::

    checkpoints/<model>/<version>/index.json   written last by `PublishCheckpoint` (publish.py)
    checkpoints/<model>/<version>/...          safetensors, config.json, run_config.yaml
    checkpoints/<model>/latest.json            {version, uri, prefix, metrics, created, ...}

A version is `<UTC timestamp>-<8 hex of the run config's sha256>` (`20260101T120000Z-1a2b3c4d`),
so names sort by time. A folder without `index.json` is not published and is never listed.
`latest.json` is replaced with one atomic store write: readers see the old or the new pointer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
import re

from datagen.store import ArtifactStore
from training.publish import INDEX

ROOT = "checkpoints"
LATEST = "latest.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name == LATEST:
        raise ValueError(f"invalid {kind} {name!r}: letters, digits, '.', '_', '-' only")
    return name


def model_prefix(model: str) -> str:
    """`checkpoints/<model>`."""
    return f"{ROOT}/{_check_name('model name', model)}"


def version_prefix(model: str, version: str) -> str:
    """`checkpoints/<model>/<version>`: where `PublishCheckpoint` publishes that version."""
    return f"{model_prefix(model)}/{_check_name('version', version)}"


def config_hash(config: object) -> str:
    """8 hex digits of the sha256 of `config` (a str, or JSON-able data serialised sorted)."""
    text = config if isinstance(config, str) else json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def new_version(config: object, now: dt.datetime | None = None) -> str:
    """A fresh version name: UTC timestamp + short hash of the run's config."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{config_hash(config)}"


def list_versions(store: ArtifactStore, model: str) -> list[str]:
    """Published versions of `model` (folders holding an index.json), oldest first."""
    prefix = model_prefix(model) + "/"
    versions = []
    for key in store.list(model_prefix(model)):
        rest = key[len(prefix) :]
        version, _, name = rest.partition("/")
        if name == INDEX:
            versions.append(version)
    return sorted(versions)


def read_index(store: ArtifactStore, model: str, version: str) -> dict:
    """The published index of one version; LookupError naming the known versions if absent."""
    key = posixpath.join(version_prefix(model, version), INDEX)
    if not store.exists(key):
        known = list_versions(store, model)
        raise LookupError(
            f"{model} version {version!r} is not published at {store.uri(key)} "
            f"(published: {known or 'none'})"
        )
    return store.get_json(key)


def promote_latest(store: ArtifactStore, model: str, version: str) -> dict:
    """Point `checkpoints/<model>/latest.json` at a published version (one atomic write);
    returns the pointer written."""
    index = read_index(store, model, version)
    prefix = version_prefix(model, version)
    pointer = {
        "model": model,
        "version": version,
        "prefix": prefix,
        "uri": store.uri(prefix),
        "metrics": index.get("metrics", {}),
        "global_step": index.get("global_step"),
        "inputs": index.get("inputs", []),
        "published": index.get("published"),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    store.put_json(f"{model_prefix(model)}/{LATEST}", pointer)
    return pointer


def latest(store: ArtifactStore, model: str) -> dict | None:
    """The `latest.json` pointer of `model`, None if nothing was promoted yet."""
    key = f"{model_prefix(model)}/{LATEST}"
    return store.get_json(key) if store.exists(key) else None


def resolve(store: ArtifactStore, model: str, version: str = "latest") -> str:
    """The store prefix of a published version of `model` ("latest" follows the pointer)."""
    if version == "latest":
        pointer = latest(store, model)
        if pointer is None:
            raise LookupError(
                f"no latest {model} checkpoint: {store.uri(model_prefix(model) + '/' + LATEST)} "
                "does not exist (materialize the model's asset first)"
            )
        version = pointer["version"]
    read_index(store, model, version)
    return version_prefix(model, version)
