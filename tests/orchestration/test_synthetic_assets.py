"""Synthetic worlds -> clips -> shards as Dagster partitions; new worlds add only new partitions."""

import dagster as dg
import pytest

from assets.partitions import WORLDS
from datagen.shards import load_manifest, read_clips
from datagen.store import LocalStore
from datagen.worlds import WorldSpec
from datagen.worlds.catalog import load_spec, save_spec
from orchestration.cli import register_worlds
from orchestration.definitions import defs

TINY = {
    "ops": {
        "synthetic_clips": {
            "config": {"worldfm_clips": 1, "wonderland_clips": 0, "height": 48, "width": 48}
        }
    }
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    return LocalStore(tmp_path / "home" / "store")


def test_spec_catalog_round_trip(env):
    spec = WorldSpec("tabletop", 7, {})
    world_id = save_spec(env, spec)
    assert load_spec(env, world_id) == spec
    with pytest.raises(FileNotFoundError, match="not registered"):
        load_spec(env, "indoor-1-deadbeef")


def test_partition_materializes_clips_and_shards(env):
    instance = dg.DagsterInstance.ephemeral()
    (world_id,) = register_worlds(instance, [WorldSpec("tabletop", 3)])
    assert instance.get_dynamic_partitions(WORLDS.name) == [world_id]
    job = defs.resolve_job_def("synthetic_data")
    result = job.execute_in_process(instance=instance, partition_key=world_id, run_config=TINY)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == ["shard_integrity"] and checks[0].passed
    manifest = load_manifest(env, f"shards/synthetic/{world_id}")
    assert manifest.num_samples == 1 and manifest.provenance["source_kinds"] == {"synthetic": 1}
    (clip,) = list(read_clips(env, f"shards/synthetic/{world_id}"))
    assert clip.rgb.shape == (16, 48, 48, 3) and len(clip.ref_idx) == 4
    assert clip.level_captions and clip.caption == clip.level_captions[0]
    assert env.exists(f"clips/synthetic/{world_id}/{clip.key}.txt")
    assert env.get_bytes(f"worlds/{world_id}/preview.png")[:4] == b"\x89PNG"

    (second,) = register_worlds(instance, [WorldSpec("tabletop", 4)])
    done = instance.get_materialized_partitions(dg.AssetKey("synthetic_shards"))
    assert done == {world_id}
    assert set(instance.get_dynamic_partitions(WORLDS.name)) == {world_id, second}


def _counts(instance, world_ids) -> dict:
    """Materializations per (asset, world) of the three synthetic assets."""
    return {
        (name, world_id): len(
            instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[world_id]),
                limit=10,
            ).records
        )
        for name in ("synthetic_worlds", "synthetic_clips", "synthetic_shards")
        for world_id in world_ids
    }


def test_adding_a_partition_runs_only_that_partition(env):
    instance = dg.DagsterInstance.ephemeral()
    first, second = register_worlds(instance, [WorldSpec("tabletop", 3), WorldSpec("tabletop", 4)])
    job = defs.resolve_job_def("synthetic_data")
    assert job.execute_in_process(instance=instance, partition_key=first, run_config=TINY).success
    before = _counts(instance, [first, second])
    assert set(before.values()) <= {0, 1} and before[("synthetic_shards", first)] == 1

    (third,) = register_worlds(instance, [WorldSpec("tabletop", 5)])
    result = job.execute_in_process(instance=instance, partition_key=third, run_config=TINY)
    assert result.success
    assert {e.partition for e in result.get_asset_materialization_events()} == {third}
    assert _counts(instance, [first, second]) == before  # the others did not run again
    assert all(n == 1 for n in _counts(instance, [third]).values())
    assert before[("synthetic_shards", second)] == 0  # registered but never requested
    assert load_manifest(env, f"shards/synthetic/{third}").num_samples == 1
