"""A training asset launched through Pipes as 2 CPU processes (torchrun, DDP over gloo) reports
its metrics back as materialization metadata, from global rank 0 only."""

import dagster as dg
import pytest

from assets.training_assets import image_vae
from datagen.shards import write_shard_set
from datagen.store import LocalStore
from tests.fixtures.clips import make_clip
from training import registry
from training.launch import TrainingLauncher


@pytest.mark.slow
def test_two_process_ddp_run_reports_metrics_through_pipes(tmp_path, monkeypatch):
    """torchrun --nproc_per_node=2 on CPU, tiny image VAE, 2 steps (~30 s on 2 cores)."""
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "store")
    clips = [make_clip(f"w0-{i}", num_frames=9, height=32, width=32, seed=i) for i in range(4)]
    write_shard_set(store, "shards/synthetic/w0", clips, "synthetic", "w0", progress=False)
    launcher = TrainingLauncher(
        tmp_path / "runs",
        gpus=0,
        processes_per_node=2,
        cpu_threads=1,
        store_uri=store.uri(""),
        report_every_s=0.0,
    )
    config = {
        "size": "tiny",
        "max_steps": 2,
        "overrides": [
            "--data.init_args.task_config={frames_per_clip: 2, height: 32, width: 32}",
            "--data.init_args.batch_size=1",
            "--trainer.accelerator=cpu",
        ],
    }
    result = dg.materialize(
        [image_vae],
        resources={"store": store, "launcher": launcher},
        run_config={"ops": {"image_vae": {"config": config}}},
        raise_on_error=False,
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    index = store.get_json(
        f"{registry.version_prefix('image_vae', metadata['version'])}/index.json"
    )
    # reported by PipesReporter on rank 0 and merged into the asset's metadata
    assert metadata["global_step"] == 2 == index["global_step"]
    assert metadata["train/loss"] == pytest.approx(index["metrics"]["train/loss"])
    assert metadata["training_seconds"] > 0
    log = (tmp_path / "runs" / "image_vae" / metadata["version"] / "train.log").read_text()
    assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in log
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log
    assert "distributed_backend=gloo" in log
    assert "All distributed processes registered. Starting with 2 processes" in log


@pytest.mark.gpu
def test_two_gpu_ddp_run_reports_metrics_through_pipes(tmp_path, monkeypatch):
    """The local launcher on a 2-GPU node: torchrun over both GPUs (DDP over NCCL)."""
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices")
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "store")
    clips = [make_clip(f"w0-{i}", num_frames=9, height=64, width=64, seed=i) for i in range(8)]
    write_shard_set(store, "shards/synthetic/w0", clips, "synthetic", "w0", progress=False)
    launcher = TrainingLauncher(
        tmp_path / "runs", gpus=2, store_uri=store.uri(""), report_every_s=0.0
    )
    config = {
        "size": "tiny",
        "max_steps": 20,
        "overrides": [
            "--data.init_args.task_config={frames_per_clip: 2, height: 64, width: 64}",
            "--data.init_args.batch_size=2",
        ],
    }
    result = dg.materialize(
        [image_vae],
        resources={"store": store, "launcher": launcher},
        run_config={"ops": {"image_vae": {"config": config}}},
        raise_on_error=False,
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    index = store.get_json(
        f"{registry.version_prefix('image_vae', metadata['version'])}/index.json"
    )
    assert metadata["global_step"] == 20 == index["global_step"]
    assert metadata["train/loss"] == pytest.approx(index["metrics"]["train/loss"])
    log = (tmp_path / "runs" / "image_vae" / metadata["version"] / "train.log").read_text()
    print(log[-3000:])
    assert "distributed_backend=nccl" in log
    assert "All distributed processes registered. Starting with 2 processes" in log
