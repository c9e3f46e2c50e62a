"""`S3Store`: an artifact store in an S3 bucket (AWS or any S3-compatible server)."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from datagen.store.base import (
    CHUNK,
    ArtifactStore,
    is_visible_key,
    normalize_key,
    normalize_prefix,
)
from datagen.store.errors import (
    AccessDenied,
    BucketNotFound,
    InvalidKey,
    ObjectNotFound,
    StoreError,
    StoreUnavailable,
)
from datagen.store.retry import retry_transient

MiB = 1 << 20
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "403",
    "Forbidden",
}
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Store(ArtifactStore):
    """Objects live at `s3://bucket/prefix/key`.

    Writes stream through a multipart upload once they exceed `part_size` and become visible
    only when the upload completes; a failed write aborts it. Uploads orphaned by a killed
    process stay invisible: give the bucket an AbortIncompleteMultipartUpload lifecycle rule.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        part_size: int = 8 * MiB,
        page_size: int = 1000,
        copy_threshold: int = 5 * 1024 * MiB,
        connect_timeout: float = 2.0,
        read_timeout: float = 60.0,
        max_attempts: int = 2,
    ):
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        if part_size < 5 * MiB:
            raise ValueError("part_size must be >= 5 MiB (the S3 minimum part size)")
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix.strip("/")).rstrip("/")
        self.endpoint_url = endpoint_url or (client.meta.endpoint_url if client else None)
        self.region = region
        self.part_size = part_size
        self.page_size = page_size
        self.copy_threshold = copy_threshold
        self._creds = (access_key_id, secret_access_key, session_token)
        self._timeouts = (connect_timeout, read_timeout, max_attempts)
        self._client = client
        self._client_given = client is not None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._bucket_ok = False

    # --- client and error mapping -------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The boto3 S3 client (created lazily, again after fork or unpickling)."""
        if self._client_stale():
            with self._lock:
                if self._client_stale():
                    self._client, self._pid = self._make_client(), os.getpid()
        return self._client

    def _client_stale(self) -> bool:
        return self._client is None or (not self._client_given and self._pid != os.getpid())

    def _make_client(self) -> Any:
        connect_timeout, read_timeout, max_attempts = self._timeouts
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": "path"} if self.endpoint_url else {},
            signature_version="s3v4",
            request_checksum_calculation="when_required",  # S3-compatible servers vary
            response_checksum_validation="when_required",
        )
        key_id, secret, token = self._creds
        session = boto3.session.Session(
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            region_name=self.region or ("us-east-1" if self.endpoint_url else None),
        )
        return session.client("s3", endpoint_url=self.endpoint_url, config=config)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_client=None, _client_given=False, _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The endpoint URL requests go to (for messages)."""
        return self.endpoint_url or self.client.meta.endpoint_url

    def _error(self, exc: Exception, key: str | None = None) -> StoreError:
        """Translate a botocore exception into a StoreError naming the URI and what to check."""
        where = self.uri(key) if key else self.uri()
        if isinstance(exc, (BotoConnectionError, HTTPClientError)):
            return StoreUnavailable(
                f"cannot reach S3 endpoint {self.endpoint} for {where}: {exc}. Check that the S3 "
                "server is running and that AWS_ENDPOINT_URL / WONDERFORGE_S3_ENDPOINT is right."
            )
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return AccessDenied(
                f"no usable S3 credentials for {where} ({exc}). Set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)."
            )
        if not isinstance(exc, ClientError):
            return StoreError(f"S3 request for {where} failed: {exc}")
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = f"{code}: {err.get('Message', '')}".strip(": ")
        if code == "NoSuchBucket" or (code in _MISSING and (key is None or not self._has_bucket())):
            return self._no_bucket(detail)
        if code in _MISSING:
            return ObjectNotFound(f"no object at {where}")
        if code in _DENIED or status == 403:
            return AccessDenied(
                f"access denied to {where} at {self.endpoint} ({detail}). Check "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN and the bucket policy."
            )
        return StoreError(f"S3 request for {where} at {self.endpoint} failed ({detail})")

    def _no_bucket(self, detail: str = "NoSuchBucket") -> BucketNotFound:
        return BucketNotFound(
            f"S3 bucket '{self.bucket}' does not exist at {self.endpoint} (store {self.uri()}; "
            f"{detail}). Create the bucket or fix the bucket name in the store URI."
        )

    def _has_bucket(self) -> bool:
        if self._bucket_ok:
            return True
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING | {"NoSuchBucket"}:
                return False
            return True  # not a missing bucket; let the caller report the original error
        except BotoCoreError:
            return True
        self._bucket_ok = True
        return True

    @contextlib.contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, key) from exc

    def _full(self, key: str) -> str:
        key = normalize_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # --- ArtifactStore ------------------------------------------------------------------------
    def uri(self, key: str = "") -> str:
        path = self._full(key) if key else self.prefix
        return f"s3://{self.bucket}/{path}" if path else f"s3://{self.bucket}"

    def open_read(self, key: str) -> BinaryIO:
        with self._errors(key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"]
        return io.BufferedReader(_BodyReader(body, lambda exc: self._error(exc, key)), CHUNK)

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        writer = _MultipartWriter(self, key)
        try:
            yield writer  # type: ignore[misc]
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    @retry_transient
    def exists(self, key: str) -> bool:
        full = self._full(key)
        try:
            with self._errors(key):
                self.client.head_object(Bucket=self.bucket, Key=full)
        except ObjectNotFound:
            return False
        return True

    @retry_transient
    def size(self, key: str) -> int:
        with self._errors(key):
            return self.client.head_object(Bucket=self.bucket, Key=self._full(key))["ContentLength"]

    @retry_transient
    def list(self, prefix: str = "") -> list[str]:
        return sorted(self._iter_keys(prefix))

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        prefix = normalize_prefix(prefix)
        root = f"{self.prefix}/" if self.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=root + prefix,
            PaginationConfig={"PageSize": self.page_size},
        )
        with self._errors():
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(root) :]
                    if is_visible_key(key):
                        yield key

    @retry_transient
    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    @retry_transient
    def delete_prefix(self, prefix: str) -> int:
        prefix = normalize_prefix(prefix).rstrip("/")
        if not prefix:
            raise InvalidKey("delete_prefix needs a non-empty prefix (refusing to wipe the store)")
        keys = self.list(prefix)
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self._full(k)} for k in keys[i : i + 1000]]
            with self._errors(prefix):
                resp = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if resp.get("Errors"):
                first = resp["Errors"][0]
                raise StoreError(
                    f"could not delete {len(resp['Errors'])} objects under {self.uri(prefix)}, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
        return len(keys)

    @retry_transient
    def copy(self, src_key: str, dst_key: str) -> None:
        src = {"Bucket": self.bucket, "Key": self._full(src_key)}
        dst = self._full(dst_key)
        size = self.size(src_key)
        if size <= self.copy_threshold:
            with self._errors(dst_key):
                self.client.copy_object(Bucket=self.bucket, Key=dst, CopySource=src)
            return
        part = max(self.part_size, -(-size // 10_000))
        with self._errors(dst_key):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=dst)["UploadId"]
        try:
            parts = []
            with self._errors(dst_key):
                for n, start in enumerate(range(0, size, part), start=1):
                    end = min(start + part, size) - 1
                    resp = self.client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=dst,
                        UploadId=upload_id,
                        PartNumber=n,
                        CopySource=src,
                        CopySourceRange=f"bytes={start}-{end}",
                    )
                    etag = resp.get("CopyPartResult", {}).get("ETag")
                    if not etag:
                        raise StoreError(
                            f"S3 endpoint {self.endpoint} does not support UploadPartCopy (no ETag "
                            f"for part {n}); cannot copy {self.uri(src_key)} ({size} bytes) "
                            "server-side. Raise copy_threshold or use a server that supports it."
                        )
                    parts.append({"PartNumber": n, "ETag": etag})
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=dst,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self._abort(dst, upload_id)
            raise
        if self.size(dst_key) != size:
            self.delete(dst_key)
            raise StoreError(
                f"server-side copy {self.uri(src_key)} -> {self.uri(dst_key)} produced a wrong size "
                f"at {self.endpoint}; the copy was deleted."
            )

    def _abort(self, full_key: str, upload_id: str) -> None:
        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)


class _BodyReader(io.RawIOBase):
    """Raw reader over a botocore StreamingBody, translating errors on read."""

    def __init__(self, body: Any, on_error: Any):
        self._body, self._on_error = body, on_error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))
        except (BotoCoreError, ClientError) as exc:
            raise self._on_error(exc) from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _MultipartWriter(io.RawIOBase):
    """Buffers up to `part_size`; small objects become one PUT, larger ones a multipart upload."""

    def __init__(self, store: S3Store, key: str):
        self._store, self._key, self._full = store, key, store._full(key)
        self._buf = bytearray()
        self._parts: list[dict] = []
        self._upload_id: str | None = None
        self._pos = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed S3 writer")
        n = memoryview(data).nbytes
        self._buf += data
        self._pos += n
        while len(self._buf) > self._store.part_size:
            self._upload_part(self._store.part_size)
        return n

    def _upload_part(self, size: int) -> None:
        s, client = self._store, self._store.client
        with s._errors(self._key):
            if self._upload_id is None:
                resp = client.create_multipart_upload(Bucket=s.bucket, Key=self._full)
                self._upload_id = resp["UploadId"]
            number = len(self._parts) + 1
            resp = client.upload_part(
                Bucket=s.bucket,
                Key=self._full,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=bytes(self._buf[:size]),
            )
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        del self._buf[:size]

    def commit(self) -> None:
        """Make the object visible: one PUT, or upload the last part and complete."""
        s = self._store
        try:
            if self._upload_id is None:
                with s._errors(self._key):
                    s.client.put_object(Bucket=s.bucket, Key=self._full, Body=bytes(self._buf))
            else:
                if self._buf:
                    self._upload_part(len(self._buf))
                with s._errors(self._key):
                    s.client.complete_multipart_upload(
                        Bucket=s.bucket,
                        Key=self._full,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": self._parts},
                    )
        except BaseException:
            self.abort()
            raise
        self._buf = bytearray()
        super().close()

    def abort(self) -> None:
        """Drop buffered data and abort the multipart upload, if any."""
        if self._upload_id is not None:
            self._store._abort(self._full, self._upload_id)
            self._upload_id = None
        self._buf = bytearray()
        super().close()

    def close(self) -> None:
        """Closing inside the `with` block is a no-op; the context manager commits."""
