"""S3Store against a real loopback S3 server (rclone serve s3; see tests/fixtures/s3_server.py)."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import time
from collections import Counter

import pytest

from datagen.store import (
    AccessDenied,
    BucketNotFound,
    InvalidKey,
    ObjectNotFound,
    S3Store,
    StoreError,
    StoreUnavailable,
    store_from_env,
    store_from_uri,
)
from tests.fixtures.s3_server import S3Server, free_port

pytestmark = pytest.mark.s3
MiB = 1 << 20


def count_calls(store: S3Store) -> Counter:
    """Count API operations the store's client makes (e.g. calls['UploadPart'])."""
    calls: Counter = Counter()

    def hook(model, **_):
        calls[model.name] += 1

    store.client.meta.events.register("before-call.s3", hook)
    return calls


def raw_keys(server: S3Server, bucket: str) -> list[str]:
    resp = server.client().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def pending_uploads(server: S3Server, bucket: str) -> list:
    return server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_bytes_file_json_round_trip(s3_store: S3Store, tmp_path):
    data = os.urandom(1_000_003)
    s3_store.put_bytes("a/b/blob.bin", data)
    assert s3_store.get_bytes("a/b/blob.bin") == data

    src = tmp_path / "src.bin"
    src.write_bytes(b"file payload")
    s3_store.put_file("files/x.bin", src)
    out = s3_store.get_file("files/x.bin", tmp_path / "out" / "y.bin")
    assert out.read_bytes() == b"file payload"
    assert [p.name for p in out.parent.iterdir()] == ["y.bin"]

    obj = {"schema": 3, "name": "clip-ü", "values": [1.5, None, True]}
    s3_store.put_json("meta/manifest.json", obj)
    assert s3_store.get_json("meta/manifest.json") == obj
    s3_store.put_bytes("empty.bin", b"")
    assert s3_store.get_bytes("empty.bin") == b"" and s3_store.size("empty.bin") == 0


def test_prefix_maps_to_object_keys(s3_server: S3Server, s3_bucket: str):
    store = S3Store(s3_bucket, prefix="runs/r1", **s3_server.store_kwargs())
    store.put_bytes("shards/0.tar", b"0")
    assert raw_keys(s3_server, s3_bucket) == ["runs/r1/shards/0.tar"]
    assert store.list() == ["shards/0.tar"]
    assert store.uri("shards/0.tar") == f"s3://{s3_bucket}/runs/r1/shards/0.tar"
    assert store.uri() == f"s3://{s3_bucket}/runs/r1"
    again = store_from_uri(store.uri(), **s3_server.store_kwargs())
    assert isinstance(again, S3Store) and again.prefix == "runs/r1"
    assert again.get_bytes("shards/0.tar") == b"0"


def test_list_nested_sorted_and_paginated(s3_server: S3Server, s3_bucket: str):
    store = S3Store(s3_bucket, page_size=2, **s3_server.store_kwargs())
    keys = ["z.txt", "a/b/2.bin", "a/b/1.bin", "a/bc/3.bin", "a/b/c/d/4.bin", "b/5.bin"]
    for k in keys:
        store.put_bytes(k, k.encode())
    calls = count_calls(store)
    assert store.list() == sorted(keys)
    assert calls["ListObjectsV2"] >= 3  # 6 keys, 2 per page
    assert store.list("a/b") == ["a/b/1.bin", "a/b/2.bin", "a/b/c/d/4.bin"]
    assert store.list("a/b/") == store.list("a/b")
    assert store.list("a") == ["a/b/1.bin", "a/b/2.bin", "a/b/c/d/4.bin", "a/bc/3.bin"]
    assert store.list("nope") == []


def test_exists_delete_size_sha256(s3_store: S3Store, s3_server: S3Server, s3_bucket: str):
    data = os.urandom(2_500_000)
    s3_store.put_bytes("d/x.bin", data)
    s3_store.put_bytes("d/sub/y.bin", b"y")
    s3_store.put_bytes("keep/z.bin", b"z")
    assert s3_store.exists("d/x.bin") and not s3_store.exists("d/nothing")
    assert s3_store.size("d/x.bin") == len(data)
    assert s3_store.sha256("d/x.bin") == hashlib.sha256(data).hexdigest()

    s3_store.delete("d/x.bin")
    assert not s3_store.exists("d/x.bin")
    s3_store.delete("d/x.bin")  # idempotent
    assert s3_store.list() == ["d/sub/y.bin", "keep/z.bin"]
    assert s3_store.delete_prefix("d/") == 1
    assert raw_keys(s3_server, s3_bucket) == ["keep/z.bin"]
    with pytest.raises(InvalidKey):
        s3_store.delete_prefix("")
    with pytest.raises(ObjectNotFound) as info:
        s3_store.get_bytes("d/x.bin")
    assert f"s3://{s3_bucket}/d/x.bin" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(ObjectNotFound):
        s3_store.size("d/x.bin")


def test_open_read_streams_a_tar_written_with_open_write(s3_store: S3Store):
    members = {f"{i:06d}.rgb": os.urandom(10_000 + i) for i in range(5)}
    with s3_store.open_write("shards/0.tar") as f, tarfile.open(fileobj=f, mode="w") as tar:
        for name, payload in members.items():  # mode "w" also needs tell()
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    got = {}
    with s3_store.open_read("shards/0.tar") as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for m in tar:
            got[m.name] = tar.extractfile(m).read()
    assert got == members
    with s3_store.open_read("shards/0.tar") as f:
        assert len(f.read(100)) == 100 and f.readable()


def test_multipart_write(s3_server: S3Server, s3_bucket: str):
    store = S3Store(s3_bucket, part_size=5 * MiB, **s3_server.store_kwargs())
    data = os.urandom(11 * MiB + 123)
    calls = count_calls(store)
    with store.open_write("big/obj.bin") as f:
        for i in range(0, len(data), 1_000_000):
            f.write(data[i : i + 1_000_000])
    assert calls["UploadPart"] == 3 and calls["CompleteMultipartUpload"] == 1
    assert calls["PutObject"] == 0
    assert store.size("big/obj.bin") == len(data)
    assert store.sha256("big/obj.bin") == hashlib.sha256(data).hexdigest()
    assert pending_uploads(s3_server, s3_bucket) == []


def test_multipart_server_side_copy(moto_s3_server: S3Server):
    bucket = moto_s3_server.create_bucket()
    kwargs = moto_s3_server.store_kwargs()
    store = S3Store(bucket, part_size=5 * MiB, copy_threshold=1, **kwargs)
    data = os.urandom(11 * MiB + 5)
    store.put_bytes("big/obj.bin", data)
    calls = count_calls(store)
    store.copy("big/obj.bin", "published/obj.bin")
    assert calls["UploadPartCopy"] == 3 and calls["GetObject"] == 0
    assert store.get_bytes("published/obj.bin") == data
    assert pending_uploads(moto_s3_server, bucket) == []


def test_unsupported_multipart_copy_fails_cleanly(s3_server: S3Server, s3_bucket: str):
    if s3_server.kind != "rclone":
        pytest.skip("rclone serve s3 is the server without UploadPartCopy")
    store = S3Store(s3_bucket, part_size=5 * MiB, copy_threshold=1, **s3_server.store_kwargs())
    store.put_bytes("big/obj.bin", os.urandom(6 * MiB))
    with pytest.raises(StoreError, match="does not support UploadPartCopy"):
        store.copy("big/obj.bin", "published/obj.bin")
    assert store.list() == ["big/obj.bin"]
    assert pending_uploads(s3_server, s3_bucket) == []


def test_copy_is_server_side(s3_store: S3Store):
    s3_store.put_bytes("staging/a.tar", b"payload")
    calls = count_calls(s3_store)
    s3_store.copy("staging/a.tar", "published/v1/a.tar")
    assert calls["CopyObject"] == 1 and calls["GetObject"] == 0 and calls["PutObject"] == 0
    assert s3_store.get_bytes("published/v1/a.tar") == b"payload"
    with pytest.raises(ObjectNotFound):
        s3_store.copy("staging/none.tar", "published/none.tar")
    assert s3_store.list("published") == ["published/v1/a.tar"]


def test_exception_inside_open_write_leaves_nothing(s3_server: S3Server, s3_bucket: str):
    store = S3Store(s3_bucket, part_size=5 * MiB, **s3_server.store_kwargs())
    store.put_bytes("keep/old.bin", b"old")
    with pytest.raises(RuntimeError, match="boom"), store.open_write("small.bin") as f:
        f.write(b"partial")
        raise RuntimeError("boom")
    calls = count_calls(store)
    with pytest.raises(RuntimeError, match="boom"), store.open_write("keep/old.bin") as f:
        f.write(os.urandom(6 * MiB))  # one part is uploaded
        assert calls["UploadPart"] == 1
        assert len(pending_uploads(s3_server, s3_bucket)) == 1
        assert not store.exists("big.bin") and store.list() == ["keep/old.bin"]
        raise RuntimeError("boom")
    assert calls["AbortMultipartUpload"] == 1
    assert pending_uploads(s3_server, s3_bucket) == []
    assert raw_keys(s3_server, s3_bucket) == ["keep/old.bin"]
    assert store.get_bytes("keep/old.bin") == b"old"


def test_store_from_env_round_trip(s3_server: S3Server, s3_bucket: str):
    env = {"WONDERFORGE_STORE": f"s3://{s3_bucket}/pre", **s3_server.env()}
    store = store_from_env(env)
    assert isinstance(store, S3Store) and store.endpoint == s3_server.endpoint_url
    store.put_json("m.json", {"ok": 1})
    assert raw_keys(s3_server, s3_bucket) == ["pre/m.json"]
    assert store_from_env(env).get_json("m.json") == {"ok": 1}


def test_pickled_store_reconnects(s3_store: S3Store):
    s3_store.put_bytes("p.bin", b"pickled")
    clone = pickle.loads(pickle.dumps(s3_store))
    assert clone.get_bytes("p.bin") == b"pickled"


def test_down_endpoint_fails_fast():
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = S3Store("any-bucket", endpoint_url=endpoint, access_key_id="a", secret_access_key="b")
    for call in (
        lambda: store.get_bytes("k"),
        lambda: store.exists("k"),
        lambda: store.put_bytes("k", b"x"),
        lambda: store.list(),
    ):
        start = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            call()
        assert time.monotonic() - start < 10
        assert f"cannot reach S3 endpoint {endpoint}" in str(info.value)
        assert "s3://any-bucket" in str(info.value)


def test_missing_bucket(s3_server: S3Server):
    store = S3Store("wf-no-such-bucket", **s3_server.store_kwargs())
    for call in (
        lambda: store.get_bytes("k"),
        lambda: store.exists("k"),
        lambda: store.size("k"),
        lambda: store.put_bytes("k", b"x"),
        lambda: store.list(),
    ):
        with pytest.raises(BucketNotFound, match="bucket 'wf-no-such-bucket' does not exist"):
            call()


@pytest.mark.parametrize("which", ["secret", "key_id"])
def test_wrong_credentials(s3_server: S3Server, s3_bucket: str, which: str):
    if not s3_server.checks_auth:
        pytest.skip(f"{s3_server.kind} server does not check credentials")
    S3Store(s3_bucket, **s3_server.store_kwargs()).put_bytes("k", b"x")
    kwargs = s3_server.store_kwargs()
    kwargs["secret_access_key" if which == "secret" else "access_key_id"] = "WRONG-VALUE-123456"
    store = S3Store(s3_bucket, **kwargs)
    for call in (
        lambda: store.get_bytes("k"),
        lambda: store.exists("k"),
        lambda: store.put_bytes("k2", b"x"),
        lambda: store.list(),
    ):
        with pytest.raises(AccessDenied) as info:
            call()
        assert isinstance(info.value, PermissionError) and isinstance(info.value, StoreError)
        assert "AWS_ACCESS_KEY_ID" in str(info.value) and f"s3://{s3_bucket}" in str(info.value)


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a/", ".tmp-x"])
def test_invalid_keys_are_rejected(s3_store: S3Store, key: str):
    for call in (
        lambda: s3_store.put_bytes(key, b"x"),
        lambda: s3_store.get_bytes(key),
        lambda: s3_store.exists(key),
    ):
        with pytest.raises(ValueError):
            call()
    assert s3_store.list() == []
