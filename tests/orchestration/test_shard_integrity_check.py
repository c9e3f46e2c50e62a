"""The reusable shard_integrity check inside a partitioned shard asset and standalone."""

import dagster as dg

from assets.checks import build_shard_integrity_check, shard_integrity_result, shard_integrity_spec
from datagen.shards import write_shard_set
from datagen.store import ArtifactStore, LocalStore
from tests.fixtures.clips import make_clip

PARTS = dg.StaticPartitionsDefinition(["a", "b"])


@dg.asset(partitions_def=PARTS, check_specs=[shard_integrity_spec("toy_shards")])
def toy_shards(context: dg.AssetExecutionContext, store: dg.ResourceParam[ArtifactStore]):
    prefix = f"shards/toy/{context.partition_key}"
    clips = [make_clip(key=f"{context.partition_key}-{i}", seed=i) for i in range(3)]
    write_shard_set(store, prefix, clips, "toy", context.partition_key, progress=False)
    yield dg.MaterializeResult(metadata={"prefix": prefix})
    yield shard_integrity_result(store, [prefix])


toy_all = build_shard_integrity_check("toy_shards", "shards/toy")


def test_check_passes_in_asset_then_catches_corruption(tmp_path):
    store = LocalStore(tmp_path / "store")
    for key in ("a", "b"):
        result = dg.materialize([toy_shards], resources={"store": store}, partition_key=key)
        evaluation = result.get_asset_check_evaluations()[0]
        assert evaluation.passed and evaluation.metadata["samples"].value == 3

    check_run = dg.materialize(
        [toy_shards, toy_all],
        resources={"store": store},
        selection=dg.AssetSelection.checks(toy_all),
    )
    evaluation = check_run.get_asset_check_evaluations()[0]
    assert evaluation.passed and evaluation.metadata["shard_sets"].value == 2

    shard = next(k for k in store.list("shards/toy/b") if k.endswith(".tar"))
    store.put_bytes(shard, store.get_bytes(shard)[:-1024])
    check_run = dg.materialize(
        [toy_shards, toy_all],
        resources={"store": store},
        selection=dg.AssetSelection.checks(toy_all),
        raise_on_error=False,
    )
    evaluation = check_run.get_asset_check_evaluations()[0]
    assert not evaluation.passed
    assert evaluation.metadata["problems"].value == 1
    assert "shards/toy/b" in evaluation.metadata["details"].value
