"""Retrying transient artifact-store failures with exponential backoff.

`retry_transient` wraps whole store operations (a PUT, a GET, a listing). It retries only errors
that are worth retrying — S3 throttling / 5xx / timeouts / dropped connections, and local I/O
errors such as EIO on a flaky network filesystem — and re-raises everything else at once (a
missing key, denied access, a full disk). Nested wrapped calls (an operation that calls another
one) retry only at the outermost level, so attempts never multiply.

Settings: `WONDERFORGE_STORE_RETRIES` (attempts in all, default 3; 1 disables retrying) and
`WONDERFORGE_STORE_RETRY_DELAY` (first delay in seconds, default 0.5; then ×2 up to 20 s, with
±25 % jitter).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3.exceptions import ProtocolError

from datagen.store.errors import StoreUnavailable

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

RETRIES_ENV = "WONDERFORGE_STORE_RETRIES"
DELAY_ENV = "WONDERFORGE_STORE_RETRY_DELAY"
MAX_DELAY_S = 20.0

# S3 error codes and HTTP statuses that mean "try again later" (AWS documents them as retryable).
RETRYABLE_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeoutException",
    "RequestLimitExceeded",
    "InternalError",
    "ServiceUnavailable",
    "BandwidthLimitExceeded",
    "PriorRequestNotComplete",
    "TooManyRequestsException",
}
RETRYABLE_STATUS = {429, 500, 502, 503, 504}
# Local errno values of transient I/O trouble (network filesystems, busy devices).
RETRYABLE_ERRNO = {
    errno.EIO,
    errno.EAGAIN,
    errno.EBUSY,
    errno.EINTR,
    errno.ETIMEDOUT,
    errno.ESTALE,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETRESET,
}
_TRANSIENT_TYPES = (
    StoreUnavailable,
    BotoConnectionError,
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
    ResponseStreamingError,
    ProtocolError,
)

_state = threading.local()


def _client_error_is_transient(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in RETRYABLE_CODES or status in RETRYABLE_STATUS


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) is a transient storage failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _TRANSIENT_TYPES) or _client_error_is_transient(current):
            return True
        if isinstance(current, OSError) and current.errno in RETRYABLE_ERRNO:
            return True
        current = current.__cause__ or current.__context__
    return False


def backoff_delays(attempts: int, first: float, factor: float = 2.0, cap: float = MAX_DELAY_S):
    """The `attempts - 1` waits between attempts: first, first·factor, ... capped at `cap`."""
    return [min(cap, first * factor**i) for i in range(max(0, attempts - 1))]


def _settings() -> tuple[int, float]:
    try:
        attempts = max(1, int(os.environ.get(RETRIES_ENV, "3")))
        delay = max(0.0, float(os.environ.get(DELAY_ENV, "0.5")))
    except ValueError as error:
        raise ValueError(f"{RETRIES_ENV} / {DELAY_ENV} must be numbers: {error}") from None
    return attempts, delay


def retry_transient(
    func: F | None = None,
    *,
    attempts: int | None = None,
    delay: float | None = None,
    jitter: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
) -> F:
    """Decorator: retry `func` on transient storage errors with exponential backoff.

    attempts / delay: total attempts and first wait (default: the environment settings, read at
    call time). jitter: each wait is multiplied by a uniform factor in [1 - jitter, 1 + jitter].
    sleep: injectable for tests. Use bare (`@retry_transient`) or with arguments.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if getattr(_state, "active", False):  # an outer call already retries
                return fn(*args, **kwargs)
            total, first = _settings()
            total = attempts if attempts is not None else total
            first = delay if delay is not None else first
            waits = backoff_delays(total, first)
            _state.active = True
            try:
                for attempt in range(total):
                    try:
                        return fn(*args, **kwargs)
                    except Exception as exc:
                        if attempt == total - 1 or not is_transient(exc):
                            raise
                        wait = waits[attempt] * random.uniform(1 - jitter, 1 + jitter)
                        log.warning(
                            "transient storage error in %s (attempt %d/%d), retrying in %.2f s: %s",
                            getattr(fn, "__qualname__", repr(fn)),
                            attempt + 1,
                            total,
                            wait,
                            exc,
                        )
                        sleep(wait)
            finally:
                _state.active = False
            raise AssertionError("unreachable")  # pragma: no cover

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate  # type: ignore[return-value]
