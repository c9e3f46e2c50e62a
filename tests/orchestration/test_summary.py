"""The demo's summary table: rows per asset with partition counts, key metrics and URIs."""

import dagster as dg

from orchestration.summary import format_table, key_metrics, summary_rows

PARTS = dg.StaticPartitionsDefinition(["a", "b", "c"])


@dg.asset(partitions_def=PARTS)
def shards(context) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"uri": dg.MetadataValue.url(f"file:///s/{context.partition_key}"), "clips": 4}
    )


@dg.asset
def model() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={
            "checkpoint_uri": dg.MetadataValue.url("file:///ckpt/v1"),
            "loss": 0.012345,
            "eval/psnr": 21.5,
            "note": "text is not a metric",
            "global_step": 40,
            "training_seconds": 3.2,
        }
    )


def test_rows_and_table():
    instance = dg.DagsterInstance.ephemeral()
    for key in ("a", "c"):
        assert dg.materialize([shards], instance=instance, partition_key=key).success
    assert dg.materialize([model], instance=instance).success
    rows = summary_rows(instance, ["shards", "model", "never"])
    assert [r.asset for r in rows] == ["shards", "model", "never"]
    assert rows[0].partitions == "2" and rows[0].metrics == "clips=4"
    assert rows[0].uri == "file:///s/c"  # the latest materialization
    assert rows[1].partitions == "" and rows[1].uri == "file:///ckpt/v1"
    assert rows[1].metrics == "eval/psnr=21.5, loss=0.01235, global_step=40"
    assert rows[2].metrics == "-"
    table = format_table(rows).splitlines()
    assert table[0].split() == ["asset", "partitions", "key", "metrics", "output"]
    assert set(table[1]) == {"-"} and len(table) == 5
    assert table[3].startswith("model ") and table[3].endswith("file:///ckpt/v1")


def test_key_metrics_skips_non_numbers_and_limits():
    meta = {"psnr": 20.0, "ssim": 0.5, "loss": float("nan"), "clips": True, "samples": 3}
    assert key_metrics(meta) == "psnr=20, ssim=0.5, loss=nan"
    assert key_metrics(meta, limit=1) == "psnr=20"
