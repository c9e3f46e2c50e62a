"""Artifact store: one API over a local directory (default) and S3."""

from datagen.store.base import TEMP_PREFIX, ArtifactStore, normalize_key
from datagen.store.errors import (
    AccessDenied,
    BucketNotFound,
    InvalidKey,
    ObjectNotFound,
    StoreError,
    StoreUnavailable,
)
from datagen.store.factory import (
    s3_options_from_env,
    store_from_env,
    store_from_env_uri,
    store_from_uri,
)
from datagen.store.local import LocalStore
from datagen.store.s3 import S3Store

__all__ = [
    "TEMP_PREFIX",
    "AccessDenied",
    "ArtifactStore",
    "BucketNotFound",
    "InvalidKey",
    "LocalStore",
    "ObjectNotFound",
    "S3Store",
    "StoreError",
    "StoreUnavailable",
    "normalize_key",
    "s3_options_from_env",
    "store_from_env",
    "store_from_env_uri",
    "store_from_uri",
]
