"""Store errors: each message names the URI, what went wrong and what to check."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every artifact-store failure."""


class InvalidKey(StoreError, ValueError):
    """A key that is empty, absolute, contains '..' or a reserved temp name."""


class ObjectNotFound(StoreError, FileNotFoundError):
    """No object under the key."""


class StoreUnavailable(StoreError, ConnectionError):
    """The backend cannot be reached (endpoint down, DNS, timeout)."""


class BucketNotFound(StoreError):
    """The S3 bucket does not exist."""


class AccessDenied(StoreError, PermissionError):
    """Credentials are missing, wrong, or lack permission."""
