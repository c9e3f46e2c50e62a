"""LocalStore: round trips, listing, atomic writes, URIs, env config, key validation."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from datagen.store import (
    TEMP_PREFIX,
    InvalidKey,
    LocalStore,
    ObjectNotFound,
    S3Store,
    StoreError,
    store_from_env,
    store_from_uri,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_bytes_file_json_round_trip(store: LocalStore, tmp_path: Path):
    data = os.urandom(3 * 1024 * 1024 + 7)
    store.put_bytes("a/b/blob.bin", data)
    assert store.get_bytes("a/b/blob.bin") == data
    assert (store.root / "a/b/blob.bin").read_bytes() == data

    src = tmp_path / "src.bin"
    src.write_bytes(b"file payload")
    store.put_file("files/x.bin", src)
    out = store.get_file("files/x.bin", tmp_path / "out" / "y.bin")
    assert out == tmp_path / "out" / "y.bin"
    assert out.read_bytes() == b"file payload"
    assert [p.name for p in out.parent.iterdir()] == ["y.bin"]  # no temp left beside it

    obj = {"schema": 3, "name": "clip-ü", "values": [1.5, None, True]}
    store.put_json("meta/manifest.json", obj)
    assert store.get_json("meta/manifest.json") == obj
    store.put_bytes("a/b/blob.bin", b"overwritten")
    assert store.get_bytes("a/b/blob.bin") == b"overwritten"


def test_list_is_recursive_sorted_and_prefix_scoped(store: LocalStore):
    keys = ["z.txt", "a/b/2.bin", "a/b/1.bin", "a/bc/3.bin", "a/b/c/d/4.bin", "b/5.bin"]
    for k in keys:
        store.put_bytes(k, k.encode())
    assert store.list() == sorted(keys)
    assert store.list("a/b") == ["a/b/1.bin", "a/b/2.bin", "a/b/c/d/4.bin"]
    assert store.list("a/b/") == store.list("a/b")
    assert store.list("a") == ["a/b/1.bin", "a/b/2.bin", "a/b/c/d/4.bin", "a/bc/3.bin"]
    assert store.list("nope") == []
    assert store.list("z.txt") == []  # a prefix is a directory, not an object
    assert LocalStore(store.root / "missing").list() == []


def test_exists_delete_size_sha256(store: LocalStore):
    data = os.urandom(2_500_000)
    store.put_bytes("d/x.bin", data)
    store.put_bytes("d/sub/y.bin", b"y")
    store.put_bytes("keep/z.bin", b"z")
    assert store.exists("d/x.bin") and not store.exists("d/nothing")
    assert not store.exists("d")  # directories are not objects
    assert store.size("d/x.bin") == len(data)
    assert store.sha256("d/x.bin") == hashlib.sha256(data).hexdigest()

    store.delete("d/x.bin")
    assert not store.exists("d/x.bin")
    store.delete("d/x.bin")  # idempotent
    assert store.list() == ["d/sub/y.bin", "keep/z.bin"]

    assert store.delete_prefix("d") == 1
    assert store.list() == ["keep/z.bin"]
    assert not (store.root / "d").exists()
    with pytest.raises(InvalidKey):
        store.delete_prefix("")
    with pytest.raises(ObjectNotFound, match="no object at file://"):
        store.size("d/x.bin")


def test_missing_object_errors_name_uri(store: LocalStore):
    with pytest.raises(ObjectNotFound) as info:
        store.get_bytes("no/such.bin")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, StoreError)
    assert store.uri("no/such.bin") in str(info.value)
    with pytest.raises(ObjectNotFound):
        store.get_file("no/such.bin", store.root.parent / "dl.bin")
    assert not (store.root.parent / "dl.bin").exists()


def test_open_read_streams_a_tar_written_with_open_write(store: LocalStore):
    members = {f"{i:06d}.rgb": os.urandom(10_000 + i) for i in range(5)}
    with store.open_write("shards/000000.tar") as f, tarfile.open(fileobj=f, mode="w|") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    got = {}
    with store.open_read("shards/000000.tar") as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for m in tar:
            got[m.name] = tar.extractfile(m).read()
    assert got == members
    with store.open_read("shards/000000.tar") as f:
        assert len(f.read(100)) == 100


def test_copy(store: LocalStore):
    store.put_bytes("staging/a.tar", b"payload")
    store.copy("staging/a.tar", "published/v1/a.tar")
    assert store.get_bytes("published/v1/a.tar") == b"payload"
    assert store.get_bytes("staging/a.tar") == b"payload"
    with pytest.raises(ObjectNotFound):
        store.copy("staging/none.tar", "published/none.tar")
    assert store.list("published") == ["published/v1/a.tar"]


def test_exception_inside_open_write_leaves_nothing(store: LocalStore):
    store.put_bytes("keep/old.bin", b"old")
    with pytest.raises(RuntimeError, match="boom"), store.open_write("new/obj.bin") as f:
        f.write(b"partial" * 1000)
        raise RuntimeError("boom")
    with pytest.raises(KeyError), store.open_write("keep/old.bin") as f:
        f.write(b"new but failed")
        raise KeyError("x")
    assert not store.exists("new/obj.bin")
    assert store.get_bytes("keep/old.bin") == b"old"
    assert store.list() == ["keep/old.bin"]
    assert all_files(store.root) == ["keep/old.bin"]  # temp files removed


def test_partial_write_is_invisible_until_exit(store: LocalStore):
    with store.open_write("a/obj.bin") as f:
        f.write(b"x" * 4096)
        f.flush()
        assert not store.exists("a/obj.bin")
        assert store.list() == []
        on_disk = all_files(store.root)
        assert len(on_disk) == 1 and on_disk[0].startswith(f"a/{TEMP_PREFIX}")
    assert store.list() == ["a/obj.bin"]
    assert store.get_bytes("a/obj.bin") == b"x" * 4096


def test_killed_writer_leaves_no_visible_object(store: LocalStore):
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from datagen.store import LocalStore
        store = LocalStore({str(store.root)!r})
        with store.open_write("shards/000001.tar") as f:
            f.write(b"A" * 1_000_000)
            f.flush()
            os._exit(3)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == 3
    assert not store.exists("shards/000001.tar")
    assert store.list() == []
    stray = all_files(store.root)
    assert len(stray) == 1 and stray[0].startswith(f"shards/{TEMP_PREFIX}")
    store.put_bytes("shards/000001.tar", b"complete")
    assert store.list("shards") == ["shards/000001.tar"]
    assert store.delete_prefix("shards") == 1
    assert all_files(store.root) == []


def test_uri_and_store_from_uri_round_trip(tmp_path: Path):
    store = LocalStore(tmp_path / "with space" / "store")
    uri = store.uri("a b/c.txt")
    assert uri.startswith("file:///") and uri.endswith("/with%20space/store/a%20b/c.txt")
    assert store.uri() == (tmp_path / "with space" / "store").resolve().as_uri()
    store.put_bytes("a b/c.txt", b"hi")
    for spec in (store.uri(), str(store.root), store.root):
        again = store_from_uri(spec)
        assert isinstance(again, LocalStore) and again.root == store.root
        assert again.get_bytes("a b/c.txt") == b"hi"
    s3 = store_from_uri("s3://bucket-x/some/prefix/")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket-x", "some/prefix")
    assert s3.uri("k/v.bin") == "s3://bucket-x/some/prefix/k/v.bin"
    with pytest.raises(ValueError, match="unsupported"):
        store_from_uri("gs://bucket/x")


def test_store_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    default = store_from_env({})
    assert isinstance(default, LocalStore)
    assert default.root == tmp_path / ".wonderforge" / "store"
    home = store_from_env({"WONDERFORGE_HOME": str(tmp_path / "home")})
    assert home.root == tmp_path / "home" / "store"
    explicit = store_from_env({"WONDERFORGE_STORE": (tmp_path / "elsewhere").as_uri()})
    assert explicit.root == tmp_path / "elsewhere"
    monkeypatch.setenv("WONDERFORGE_STORE", "relative/dir")
    assert store_from_env().root == tmp_path / "relative" / "dir"

    s3 = store_from_env(
        {
            "WONDERFORGE_STORE": "s3://bkt/pre",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "AKID",
            "AWS_SECRET_ACCESS_KEY": "SECRET",
            "AWS_SESSION_TOKEN": "TOKEN",
            "AWS_DEFAULT_REGION": "eu-west-3",
        }
    )
    assert isinstance(s3, S3Store) and s3.uri() == "s3://bkt/pre"
    assert s3.endpoint == "http://127.0.0.1:9" and s3.region == "eu-west-3"
    creds = s3.client._request_signer._credentials
    assert (creds.access_key, creds.secret_key, creds.token) == ("AKID", "SECRET", "TOKEN")
    assert s3.client.meta.region_name == "eu-west-3"
    override = store_from_env(
        {
            "WONDERFORGE_STORE": "s3://bkt",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "WONDERFORGE_S3_ENDPOINT": "http://127.0.0.1:10",
        }
    )
    assert override.endpoint == "http://127.0.0.1:10"


BAD_KEYS = ["", "/abs/key", "a/../b", "..", "a//b", "a/", "./a", "a\\b", ".tmp-x", "d/.tmp-y"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_rejected(store: LocalStore, key: str):
    for call in (
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.uri(key) if key else store.uri("/"),
    ):
        with pytest.raises(ValueError):
            call()
    assert not store.root.exists() or all_files(store.root) == []


@pytest.mark.parametrize("prefix", ["/abs", "../up", "a/../b", "/"])
def test_invalid_prefixes_are_rejected(store: LocalStore, prefix: str):
    with pytest.raises(InvalidKey):
        store.list(prefix)
    with pytest.raises(InvalidKey):
        store.delete_prefix(prefix)
