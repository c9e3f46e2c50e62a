"""Transient store errors are retried with exponential backoff; other errors are not."""

import errno
import io
import os
import types

import pytest
from botocore.exceptions import ClientError

from datagen.store import AccessDenied, LocalStore, ObjectNotFound, S3Store, StoreError
from datagen.store.retry import backoff_delays, is_transient, retry_transient


def _client_error(code: str, status: int, op: str = "GetObject") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        op,
    )


class _Flaky:
    """Fails with `error` for the first `failures` calls, then returns "ok"."""

    def __init__(self, failures: int, error: BaseException):
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_fails_twice_then_succeeds_with_exponential_waits():
    waits: list[float] = []
    fake = _Flaky(2, OSError(errno.EIO, "Input/output error"))
    wrapped = retry_transient(fake, attempts=4, delay=0.5, jitter=0.0, sleep=waits.append)
    assert wrapped() == "ok"
    assert fake.calls == 3
    assert waits == [0.5, 1.0]  # doubled each time
    assert backoff_delays(6, 0.5) == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert backoff_delays(10, 8.0)[-1] == 20.0  # capped


def test_gives_up_after_the_last_attempt():
    waits: list[float] = []
    fake = _Flaky(10, _client_error("SlowDown", 503))
    wrapped = retry_transient(fake, attempts=3, delay=1.0, jitter=0.25, sleep=waits.append)
    with pytest.raises(ClientError, match="SlowDown"):
        wrapped()
    assert fake.calls == 3 and len(waits) == 2
    assert 0.75 <= waits[0] <= 1.25 and 1.5 <= waits[1] <= 2.5


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(errno.ENOENT, "missing"),
        OSError(errno.ENOSPC, "No space left on device"),
        PermissionError(errno.EACCES, "denied"),
        AccessDenied("access denied to s3://b/k"),
        ObjectNotFound("no object at s3://b/k"),
        _client_error("NoSuchKey", 404),
        ValueError("bad key"),
    ],
)
def test_permanent_errors_are_raised_at_once(error):
    waits: list[float] = []
    fake = _Flaky(1, error)
    with pytest.raises(type(error)):
        retry_transient(fake, attempts=5, delay=0.1, sleep=waits.append)()
    assert fake.calls == 1 and waits == []


def test_transient_classification_follows_the_cause_chain():
    for code, status in [("SlowDown", 503), ("InternalError", 500), ("RequestTimeout", 400)]:
        assert is_transient(_client_error(code, status))
    assert is_transient(_client_error("Whatever", 502))
    try:
        try:
            raise _client_error("ServiceUnavailable", 503)
        except ClientError as inner:
            raise StoreError("S3 request for s3://b/k failed (ServiceUnavailable)") from inner
    except StoreError as wrapped:
        assert is_transient(wrapped)
    assert is_transient(ConnectionResetError(errno.ECONNRESET, "reset"))
    assert not is_transient(StoreError("S3 request failed (InvalidArgument)"))
    assert not is_transient(OSError(errno.EEXIST, "exists"))


def test_nested_operations_retry_only_at_the_outer_level():
    calls = {"inner": 0, "outer": 0}
    waits: list[float] = []

    @retry_transient(attempts=3, delay=0.0, sleep=waits.append)
    def inner():
        calls["inner"] += 1
        raise OSError(errno.EIO, "flaky")

    @retry_transient(attempts=3, delay=0.0, sleep=waits.append)
    def outer():
        calls["outer"] += 1
        return inner()

    with pytest.raises(OSError):
        outer()
    assert calls == {"inner": 3, "outer": 3} and len(waits) == 2  # not 3 x 3


def test_local_store_write_survives_two_eio(tmp_path, monkeypatch):
    monkeypatch.setenv("WONDERFORGE_STORE_RETRY_DELAY", "0")
    store = LocalStore(tmp_path)
    real_open = os.open
    failures = {"left": 2}

    def flaky_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", flaky_open)
    store.put_json("a/b.json", {"x": 1})
    monkeypatch.undo()
    assert failures["left"] == 0
    assert store.get_json("a/b.json") == {"x": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.json"]  # no temp files left


def test_s3_store_read_survives_two_throttles(monkeypatch):
    monkeypatch.setenv("WONDERFORGE_STORE_RETRY_DELAY", "0")

    class FakeClient:
        meta = types.SimpleNamespace(endpoint_url="http://s3.test")

        def __init__(self):
            self.calls = 0

        def get_object(self, Bucket, Key):
            self.calls += 1
            if self.calls <= 2:
                raise _client_error("SlowDown", 503)
            assert (Bucket, Key) == ("bucket", "root/k.bin")
            return {"Body": io.BytesIO(b"payload")}

    client = FakeClient()
    store = S3Store("bucket", "root", client=client)
    assert store.get_bytes("k.bin") == b"payload"
    assert client.calls == 3
