"""Build a store from a URI or from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from datagen.store.base import ArtifactStore
from datagen.store.local import LocalStore
from datagen.store.s3 import S3Store

DEFAULT_HOME = "./.wonderforge"


def store_from_uri(uri: str | os.PathLike, **s3_options: Any) -> ArtifactStore:
    """`file:///abs/path` or a plain path -> LocalStore; `s3://bucket/prefix` -> S3Store.

    `s3_options` (endpoint_url, region, access_key_id, ...) are passed to S3Store.
    """
    if isinstance(uri, os.PathLike):
        return LocalStore(uri)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"store URI {uri!r} names no bucket; expected s3://bucket/prefix")
        return S3Store(parts.netloc, parts.path.strip("/"), **s3_options)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"store URI {uri!r}: file URIs must be local (file:///abs/path)")
        return LocalStore(unquote(parts.path))
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        return LocalStore(uri)
    raise ValueError(f"unsupported store URI {uri!r}: use a path, file:///abs/path or s3://bucket")


def s3_options_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """S3Store keyword options from the standard environment variables."""
    env = os.environ if env is None else env
    return {
        "endpoint_url": env.get("WONDERFORGE_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL") or None,
        "region": env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
        "access_key_id": env.get("AWS_ACCESS_KEY_ID") or None,
        "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
        "session_token": env.get("AWS_SESSION_TOKEN") or None,
    }


def store_from_env_uri(
    uri: str | os.PathLike, env: Mapping[str, str] | None = None
) -> ArtifactStore:
    """Like `store_from_uri`, with S3 settings taken from the environment."""
    if isinstance(uri, str) and uri.lower().startswith("s3://"):
        return store_from_uri(uri, **s3_options_from_env(env))
    return store_from_uri(uri)


def store_from_env(env: Mapping[str, str] | None = None) -> ArtifactStore:
    """The configured store: `WONDERFORGE_STORE` (URI), else `$WONDERFORGE_HOME/store`.

    S3 settings come from the standard variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN, WONDERFORGE_S3_ENDPOINT or AWS_ENDPOINT_URL, AWS_DEFAULT_REGION.
    """
    env = os.environ if env is None else env
    uri = env.get("WONDERFORGE_STORE") or str(
        Path(env.get("WONDERFORGE_HOME") or DEFAULT_HOME) / "store"
    )
    return store_from_env_uri(uri, env)
