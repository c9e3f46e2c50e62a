"""Shard schema v1 round trips, atomic shard-set writes, readers' error handling, integrity."""

import io
import json
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from datagen.shards import (
    SCHEMA_VERSION,
    EncodeOptions,
    ErrorPolicy,
    SchemaVersionError,
    ShardFormatError,
    ShardSetWriter,
    check_shard_set,
    decode_clip,
    encode_clip,
    iter_manifest_clips,
    load_manifest,
    read_clips,
    write_shard_set,
)
from datagen.store import LocalStore, ObjectNotFound
from tests.fixtures.clips import make_clip

PREFIX = "shards/test/part-0"


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def _clips(n: int, **kw):
    return [make_clip(key=f"clip-{i:04d}", seed=i, **kw) for i in range(n)]


def _assert_same(a, b, depth_atol):
    assert a.key == b.key
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.K, b.K)
    np.testing.assert_array_equal(a.c2w, b.c2w)
    assert a.c2w.dtype == b.c2w.dtype
    np.testing.assert_allclose(b.depth, a.depth, atol=depth_atol, rtol=0)
    assert ((a.depth > 0) == (b.depth > 0)).all()
    np.testing.assert_allclose(b.depth_conf, a.depth_conf, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(b.normals, a.normals, atol=0.02)
    np.testing.assert_array_equal(a.pcr_rgb, b.pcr_rgb)
    np.testing.assert_array_equal(a.pcr_mask, b.pcr_mask)
    np.testing.assert_array_equal(a.latents, b.latents)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert (a.ref_idx, a.target_idx, a.frame_ids) == (b.ref_idx, b.target_idx, b.frame_ids)
    assert (a.caption, a.level_captions, a.vae_id) == (b.caption, b.level_captions, b.vae_id)
    assert a.provenance == b.provenance


def test_round_trip_png16_depth_is_exact_for_uint8():
    clip = make_clip()
    members = encode_clip(clip)
    assert all("." not in name.split(".")[0] or name == "meta.json" for name in members)
    meta = json.loads(members["meta.json"])
    assert meta["schema_version"] == SCHEMA_VERSION
    decoded = decode_clip(members, "mem:clip-0000")
    _assert_same(clip, decoded, depth_atol=meta["encoding"]["depth_scale"] / 2 + 1e-6)


def test_round_trip_npy16_depth_and_jpeg():
    clip = make_clip(seed=3)
    ramp = np.linspace(0, 255, clip.rgb.shape[2])[None, None, :, None]
    clip.rgb = np.broadcast_to(ramp, clip.rgb.shape).astype(np.uint8).copy()
    options = EncodeOptions(rgb_format="jpeg", jpeg_quality=90, depth_format="npy16")
    members = encode_clip(clip, options)
    assert "rgb0000.jpg" in members and "depth0000.npy" in members
    decoded = decode_clip(members, "mem:x")
    np.testing.assert_allclose(decoded.depth, clip.depth, rtol=1e-3)
    error = np.abs(decoded.rgb.astype(float) - clip.rgb.astype(float)).mean()
    assert error < 3.0


def test_decode_subset_of_fields():
    decoded = decode_clip(encode_clip(make_clip()), "mem:x", fields=set())
    assert decoded.normals is None and decoded.pcr_rgb is None and decoded.latents is None


def test_other_schema_version_rejected():
    members = encode_clip(make_clip())
    meta = json.loads(members["meta.json"])
    meta["schema_version"] = 2
    members["meta.json"] = json.dumps(meta).encode()
    with pytest.raises(SchemaVersionError, match=r"shard-7.tar:clip-0000: schema version 2"):
        decode_clip(members, "shard-7.tar:clip-0000")


def test_malformed_json_and_missing_member_name_shard_and_key():
    members = encode_clip(make_clip())
    broken = dict(members, **{"meta.json": b"{not json"})
    with pytest.raises(ShardFormatError, match=r"s.tar:clip-0000: malformed meta.json"):
        decode_clip(broken, "s.tar:clip-0000")
    missing = {k: v for k, v in members.items() if k != "depth0003.png"}
    with pytest.raises(ShardFormatError, match=r"s.tar:clip-0000: missing member.*depth0003"):
        decode_clip(missing, "s.tar:clip-0000")


def test_writer_splits_by_size_and_reads_back_in_order(store):
    clips = _clips(6)
    probe = write_shard_set(store, "probe", clips[:1], "test", "probe", progress=False)
    one = probe.num_bytes
    manifest = write_shard_set(
        store, PREFIX, clips, "test", "part-0", progress=False, target_shard_bytes=int(2.5 * one)
    )
    assert manifest.num_samples == 6 and len(manifest.shardlist) == 3
    assert [e.nsamples for e in manifest.shardlist] == [2, 2, 2]
    loaded = load_manifest(store, PREFIX)
    assert loaded.to_json() == manifest.to_json()
    assert loaded.to_json()["__kind__"] == "wids-shard-index-v1"
    assert loaded.provenance["source_kinds"] == {"synthetic": 6}
    read = list(read_clips(store, PREFIX))
    assert [c.key for c in read] == [c.key for c in clips]
    np.testing.assert_array_equal(read[4].rgb, clips[4].rgb)
    for entry in manifest.shardlist:
        key = manifest.shard_key(entry)
        assert store.size(key) == entry.filesize and store.sha256(key) == entry.sha256


def test_shards_are_byte_reproducible(store, tmp_path):
    first = write_shard_set(store, PREFIX, _clips(2), "test", "p", progress=False)
    other = LocalStore(tmp_path / "other")
    second = write_shard_set(other, PREFIX, _clips(2), "test", "p", progress=False)
    assert [e.sha256 for e in first.shardlist] == [e.sha256 for e in second.shardlist]


def test_rewrite_replaces_set_without_duplicates(store):
    write_shard_set(store, PREFIX, _clips(3), "test", "p", progress=False)
    second = write_shard_set(store, PREFIX, _clips(2), "test", "p", progress=False)
    assert [c.key for c in read_clips(store, PREFIX)] == ["clip-0000", "clip-0001"]
    tars = [k for k in store.list(PREFIX) if k.endswith(".tar")]
    assert tars == second.shard_keys()


def test_duplicate_keys_rejected_and_nothing_published(store):
    with pytest.raises(ValueError, match="duplicate sample key"):
        write_shard_set(store, PREFIX, [make_clip(), make_clip()], "test", "p", progress=False)
    with pytest.raises(ObjectNotFound):
        load_manifest(store, PREFIX)
    assert store.list(PREFIX) == []


def test_exception_keeps_previous_set(store):
    write_shard_set(store, PREFIX, _clips(2), "test", "p", progress=False)
    with pytest.raises(RuntimeError), ShardSetWriter(store, PREFIX, "test", "p") as writer:
        writer.add(make_clip(key="new-0"))
        raise RuntimeError("boom")
    assert [c.key for c in read_clips(store, PREFIX)] == ["clip-0000", "clip-0001"]
    assert all("new" not in k for k in store.list(PREFIX))


def test_killed_writer_leaves_no_visible_shard_and_next_run_completes(store):
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path.cwd())!r})
        from datagen.shards import ShardSetWriter
        from datagen.store import LocalStore
        from tests.fixtures.clips import make_clip
        writer = ShardSetWriter(LocalStore({str(store.root)!r}), {PREFIX!r}, "test", "p",
                                max_samples_per_shard=1)
        writer.add(make_clip(key="clip-0000", seed=0))
        writer.add(make_clip(key="clip-0001", seed=1))   # shard 0 committed, shard 1 open
        writer._shard.writer.write(b"partial bytes of a tar that never ends")
        os._exit(9)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=Path.cwd())
    assert result.returncode == 9
    with pytest.raises(ObjectNotFound):
        load_manifest(store, PREFIX)
    assert not [k for k in store.list(PREFIX) if k.endswith("shard-000001.tar")]
    manifest = write_shard_set(store, PREFIX, _clips(3), "test", "p", progress=False)
    assert [c.key for c in read_clips(store, PREFIX)] == ["clip-0000", "clip-0001", "clip-0002"]
    assert sorted(k for k in store.list(PREFIX) if k.endswith(".tar")) == manifest.shard_keys()


def _rewrite_shard(store, key, transform):
    data = store.get_bytes(key)
    store.put_bytes(key, transform(data))


def test_truncated_tar_names_shard_and_is_skipped_when_asked(store):
    manifest = write_shard_set(
        store, PREFIX, _clips(4), "test", "p", progress=False, max_samples_per_shard=2
    )
    bad = manifest.shard_keys()[0]
    _rewrite_shard(store, bad, lambda data: data[: len(data) // 2 + 100])
    with pytest.raises(ShardFormatError) as error:
        list(read_clips(store, PREFIX))
    assert store.uri(bad) in str(error.value)
    policy = ErrorPolicy("skip")
    keys = [c.key for c in iter_manifest_clips(manifest, store, policy=policy)]
    assert "clip-0002" in keys and "clip-0003" in keys
    assert policy.skipped >= 1 and store.uri(bad) in policy.errors[0]


def _tar_with(members_by_key):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for key, members in members_by_key.items():
            for name, data in sorted(members.items()):
                info = tarfile.TarInfo(f"{key}.{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_bad_samples_are_named_or_counted(store):
    manifest = write_shard_set(store, PREFIX, _clips(3), "test", "p", progress=False)
    key = manifest.shard_keys()[0]
    good = [encode_clip(c) for c in _clips(3)]
    good[1]["meta.json"] = b"{oops"
    del good[2]["K.npy"]
    store.put_bytes(key, _tar_with({f"clip-{i:04d}": m for i, m in enumerate(good)}))
    with pytest.raises(ShardFormatError, match=r"shard-000000.tar:clip-0001: malformed meta.json"):
        list(read_clips(store, PREFIX))
    policy = ErrorPolicy("skip")
    assert [c.key for c in iter_manifest_clips(manifest, store, policy=policy)] == ["clip-0000"]
    assert policy.skipped == 2
    assert "clip-0002: missing member" in policy.errors[1]


def test_integrity_check(store):
    manifest = write_shard_set(
        store, PREFIX, _clips(4), "test", "p", progress=False, max_samples_per_shard=2
    )
    report = check_shard_set(store, PREFIX)
    assert report.ok and report.samples == 4 and report.shards == 2
    first, second = manifest.shard_keys()
    _rewrite_shard(store, first, lambda d: d[:600] + bytes([d[600] ^ 1]) + d[601:])
    store.delete(second)
    report = check_shard_set(store, PREFIX)
    assert len(report.problems) == 2
    assert "sha256" in report.problems[0] and "missing" in report.problems[1]


@pytest.mark.s3
def test_shard_set_on_s3(s3_store):
    manifest = write_shard_set(
        s3_store, PREFIX, _clips(3), "test", "p", progress=False, max_samples_per_shard=2
    )
    assert manifest.shard_keys()[0].startswith(PREFIX + "/v-")
    assert [c.key for c in read_clips(s3_store, PREFIX)] == ["clip-0000", "clip-0001", "clip-0002"]
    assert check_shard_set(s3_store, PREFIX).ok
    write_shard_set(s3_store, PREFIX, _clips(1), "test", "p", progress=False)
    assert [k for k in s3_store.list(PREFIX) if k.endswith(".tar")] == load_manifest(
        s3_store, PREFIX
    ).shard_keys()
