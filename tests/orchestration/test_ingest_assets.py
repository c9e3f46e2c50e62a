"""Real-video ingestion as Dagster partitions: the inbox sensor, per-partition failures, and the
`ingest_video` job end to end on a video rendered from a procedural scene."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest

from assets.ingest import raw_videos
from assets.partitions import VIDEOS
from datagen.ingest.registry import list_inbox, register_item
from datagen.shards import load_manifest, read_clips
from datagen.store import LocalStore
from datagen.worlds.video import write_video
from orchestration.definitions import defs
from orchestration.sensors import inbox_sensor
from tests.fixtures.ingest_scene import rendered

TINY_INGEST = {
    "ops": {
        "video_clips": {"config": {"num_clips": 1, "max_stride": 1}},
        "camera_poses": {"config": {"camera_model": "SIMPLE_PINHOLE", "clip_max_side": 96}},
        "depth_maps": {"config": {"num_depths": 32, "num_neighbours": 4}},
    }
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WONDERFORGE_INBOX", str(tmp_path / "inbox"))
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    (tmp_path / "inbox").mkdir()
    return LocalStore(tmp_path / "home" / "store"), tmp_path / "inbox"


def _frames(n: int = 8, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_inbox_sensor_adds_each_new_item_once(env):
    store, inbox = env
    instance = dg.DagsterInstance.ephemeral()
    write_video(inbox / "walk.mp4", _frames())
    (inbox / ".upload.mp4.part").write_bytes(b"partial")  # in progress: ignored
    (inbox / "notes.txt").write_text("not a video")  # not an item
    ctx = dg.build_sensor_context(instance=instance, resources={"store": store})
    result = inbox_sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests
    key = request.partition_key
    assert key.startswith("walk-") and len(key) == len("walk-") + 8 and request.run_key == key
    (add,) = result.dynamic_partitions_requests
    assert add.partitions_def_name == VIDEOS.name and list(add.partition_keys) == [key]
    assert store.get_json(f"ingest/registry/{key}.json")["name"] == "walk.mp4"
    instance.add_dynamic_partitions(VIDEOS.name, list(add.partition_keys))  # what the daemon does
    again = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"store": store}))
    assert isinstance(again, dg.SkipReason) and "no new items" in again.skip_message
    (inbox / "scene").mkdir()  # an image folder is an item too
    write_video(inbox / "second.mov", _frames(6))
    third = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"store": store}))
    keys = sorted(r.partition_key for r in third.run_requests)
    assert [k.rsplit("-", 1)[0] for k in keys] == ["scene", "second"]
    assert key not in keys


def test_a_broken_video_fails_only_its_partition_with_a_clear_error(env):
    store, inbox = env
    instance = dg.DagsterInstance.ephemeral()
    write_video(inbox / "good.mp4", _frames(8))
    (inbox / "cut.mp4").write_bytes((inbox / "good.mp4").read_bytes()[:300])
    keys = {item.name: register_item(store, item) for item in list_inbox(inbox)}
    instance.add_dynamic_partitions(VIDEOS.name, list(keys.values()))

    def materialize(key):
        return dg.materialize(
            [raw_videos], partition_key=key, resources={"store": store}, instance=instance,
            raise_on_error=False,
        )  # fmt: skip

    bad = materialize(keys["cut.mp4"])
    assert not bad.success
    (failure,) = [e for e in bad.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "cut.mp4" in message and ("truncated" in message or "corrupt" in message)
    good = materialize(keys["good.mp4"])
    assert good.success
    meta = good.asset_materializations_for_node("raw_videos")[0].metadata
    assert meta["frames"].value == 8 and meta["layout"].value == "video"
    assert "data:image/png;base64" in meta["preview"].value


@pytest.mark.slow
def test_ingest_video_job_materializes_one_partition(env):
    store, inbox = env
    instance = dg.DagsterInstance.ephemeral()
    r = rendered(24, 192)
    write_video(inbox / "room.mp4", r["rgb"])
    (item,) = list_inbox(inbox)
    key = register_item(store, item)
    instance.add_dynamic_partitions(VIDEOS.name, [key])
    job = defs.resolve_job_def("ingest_video")
    result = job.execute_in_process(instance=instance, partition_key=key, run_config=TINY_INGEST)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"pose_quality", "depth_coverage", "shard_integrity"}
    assert all(c.passed for c in checks.values())
    quality = store.get_json(f"ingest/{key}/quality.json")
    assert quality["accepted"] == 1 and quality["rejected"] == 0
    (row,) = quality["clips"]
    assert row["status"] == "accepted" and row["quality"]["depth_coverage"] >= 0.3
    manifest = load_manifest(store, f"shards/real/{key}")
    assert manifest.num_samples == 1 and manifest.provenance["source_kinds"] == {"real_video": 1}
    (clip,) = list(read_clips(store, f"shards/real/{key}"))
    assert clip.rgb.shape == (16, 96, 96, 3) and clip.pcr_rgb.shape == (12, 96, 96, 3)
    prov = clip.provenance
    assert prov.video_id == key and prov.scale_factor > 0 and prov.source_kind == "real_video"
    assert {"reprojection_error_px", "depth_coverage", "anchor_coverage"} <= set(prov.quality)
    assert prov.extra["mvs"]["num_depths"] == 32 and prov.pose_estimator.startswith("pycolmap")
    meta = result.asset_materializations_for_node("point_cloud_renders")[0].metadata
    assert "data:image/png;base64" in meta["preview"].value
    assert "| clip | status |" in meta["quality"].value and "accepted" in meta["quality"].value
    done = instance.get_materialized_partitions(dg.AssetKey("real_shards"))
    assert done == {key}


@pytest.mark.s3
def test_inbox_sensor_on_an_s3_prefix(tmp_path, monkeypatch, s3_server, s3_bucket):
    """The same sensor on `s3://bucket/inbox/`: a video file and an image folder become
    partitions once each, and the registered items download byte for byte."""
    from datagen.ingest.registry import fetch_item, registered_item

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WONDERFORGE_INBOX", f"s3://{s3_bucket}/inbox")
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "home" / "store")
    write_video(tmp_path / "walk.mp4", _frames())
    client = s3_server.client()
    client.upload_file(str(tmp_path / "walk.mp4"), s3_bucket, "inbox/walk.mp4")
    client.put_object(Bucket=s3_bucket, Key="inbox/room/000.png", Body=b"png-0")
    client.put_object(Bucket=s3_bucket, Key="inbox/room/001.png", Body=b"png-1")
    client.put_object(Bucket=s3_bucket, Key="inbox/.partial.mp4", Body=b"x")  # hidden: ignored
    instance = dg.DagsterInstance.ephemeral()
    result = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"store": store}))
    keys = sorted(r.partition_key for r in result.run_requests)
    assert [k.rsplit("-", 1)[0] for k in keys] == ["room", "walk"]
    instance.add_dynamic_partitions(VIDEOS.name, keys)
    again = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"store": store}))
    assert isinstance(again, dg.SkipReason)
    room, walk = (registered_item(store, k) for k in keys)
    assert room.folder and room.uri == f"s3://{s3_bucket}/inbox/room"
    video = fetch_item(walk, tmp_path / "dl")
    assert video.read_bytes() == (tmp_path / "walk.mp4").read_bytes()
    folder = fetch_item(room, tmp_path / "dl")
    assert sorted(p.name for p in folder.iterdir()) == ["000.png", "001.png"]
    assert (folder / "001.png").read_bytes() == b"png-1"
