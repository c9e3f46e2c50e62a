"""Declarative automation of the cheap shard assets, the stopped retraining schedule and
backfill batches of world partitions (several worlds in one run)."""

import dagster as dg

from assets.automation import WORLDS_PER_RUN
from assets.partitions import GENERATION_BATCHES, VIDEOS, WORLDS
from assets.synthetic import synthetic_shards
from datagen.shards import load_manifest, write_clip_object
from datagen.store import LocalStore
from datagen.worlds import WorldSpec
from orchestration.cli import register_worlds
from orchestration.definitions import defs
from tests.fixtures.clips import make_clip
from tests.orchestration.test_synthetic_assets import TINY

AUTOMATED = {"synthetic_shards", "real_shards", "generated_shards"}


def _graph():
    return defs.resolve_asset_graph()


def _materialized(instance, asset: str, partition: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=partition))


def test_only_cheap_shard_assets_carry_an_automation_condition():
    graph = _graph()
    automated = {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).automation_condition is not None
    }
    assert automated == AUTOMATED
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.group_name == "training" or node.pools:
            assert node.automation_condition is None, key


def test_eager_requests_only_the_shards_of_the_new_upstream_partition():
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(WORLDS.name, ["w1", "w2"])
    instance.add_dynamic_partitions(VIDEOS.name, ["v1"])
    instance.add_dynamic_partitions(GENERATION_BATCHES.name, ["b1"])
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0  # every upstream partition is missing

    _materialized(instance, "synthetic_worlds", "w1")
    _materialized(instance, "synthetic_clips", "w1")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.get_requested_partitions(dg.AssetKey("synthetic_shards")) == {"w1"}
    assert result.total_requested == 1

    _materialized(instance, "synthetic_shards", "w1")  # the requested run happened
    _materialized(instance, "point_cloud_renders", "v1")
    _materialized(instance, "generated_videos", "b1")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.get_requested_partitions(dg.AssetKey("real_shards")) == {"v1"}
    assert result.get_requested_partitions(dg.AssetKey("generated_shards")) == {"b1"}
    assert result.total_requested == 2  # no training asset, no second synthetic_shards run

    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.total_requested == 0


def test_retraining_schedule_is_stopped_and_targets_only_training_assets():
    schedule = defs.resolve_schedule_def("weekly_retrain")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "0 3 * * 0" and schedule.job_name == "retrain"
    graph = _graph()
    selected = defs.resolve_job_def("retrain").asset_layer.selected_asset_keys
    assert dg.AssetKey("image_vae") in selected and dg.AssetKey("frame_model_stage3") in selected
    for key in selected:
        assert graph.get(key).group_name == "training", key
        assert graph.get(key).partitions_def is None, key
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_schedule_context(instance=instance)
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.job_name in (None, "retrain")


def test_world_assets_backfill_in_batches_and_a_batch_run_produces_every_world(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "home" / "store")
    graph = _graph()
    for name in ("synthetic_worlds", "synthetic_clips", "synthetic_shards"):
        policy = graph.get(dg.AssetKey(name)).backfill_policy
        assert policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=WORLDS_PER_RUN)

    instance = dg.DagsterInstance.ephemeral()
    first, second = register_worlds(instance, [WorldSpec("tabletop", 3), WorldSpec("indoor", 5)])
    tags = {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": second,
    }
    job = defs.resolve_job_def("synthetic_data")
    result = job.execute_in_process(instance=instance, run_config=TINY, tags=tags)
    assert result.success
    for name in ("synthetic_worlds", "synthetic_clips", "synthetic_shards"):
        assert instance.get_materialized_partitions(dg.AssetKey(name)) == {first, second}
    for world_id in (first, second):
        assert load_manifest(store, f"shards/synthetic/{world_id}").num_samples == 1
        assert store.get_bytes(f"worlds/{world_id}/preview.png")[:4] == b"\x89PNG"
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["shard_sets"].value == 2
    shards = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey("synthetic_shards")
    ]
    assert {m.partition for m in shards} == {first, second}
    worlds = shards[0].metadata["worlds"].value
    assert set(worlds) == {first, second} and all(w["samples"] == 1 for w in worlds.values())
    assert shards[0].metadata["partitions"].value == 2


def test_a_batch_with_a_world_without_clips_fails_before_writing_any_shards(tmp_path):
    store = LocalStore(tmp_path / "store")
    write_clip_object(store, "clips/synthetic/w-a/c0.tar", make_clip("c0", num_frames=4, seed=0))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(WORLDS.name, ["w-a", "w-b"])
    result = dg.materialize(
        [synthetic_shards],
        instance=instance,
        resources={"store": store},
        tags={
            "dagster/asset_partition_range_start": "w-a",
            "dagster/asset_partition_range_end": "w-b",
        },
        raise_on_error=False,
    )
    assert not result.success
    error = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "no clips under" in error and "w-b" in error
    assert store.list("shards/synthetic") == []
