"""A training asset launched through Pipes as 2 processes (torchrun) reports its metrics back as
materialization metadata, from global rank 0 only: on CPU (DDP over gloo) and, where 2 GPUs
exist, on GPUs (DDP over NCCL)."""

import dagster as dg
import pytest

from assets.training_assets import image_vae
from datagen.shards import write_shard_set
from datagen.store import LocalStore
from tests.fixtures.clips import make_clip
from training import registry
from training.launch import TrainingLauncher


def run_image_vae(
    tmp_path,
    monkeypatch,
    size: int,
    clips: int,
    steps: int,
    batch: int,
    overrides: tuple[str, ...] = (),
    **launcher_kw,
) -> tuple[dict, dict, str]:
    """Materialize ``image_vae`` (tiny, ``steps`` steps) on ``clips`` synthetic clips of
    ``size``² through a ``TrainingLauncher(**launcher_kw)``; returns (the materialization's
    metadata, the published index, the run's train.log)."""
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "store")
    made = [make_clip(f"w0-{i}", num_frames=9, height=size, width=size, seed=i)
            for i in range(clips)]  # fmt: skip
    write_shard_set(store, "shards/synthetic/w0", made, "synthetic", "w0", progress=False)
    launcher = TrainingLauncher(
        tmp_path / "runs", store_uri=store.uri(""), report_every_s=0.0, **launcher_kw
    )
    config = {
        "size": "tiny",
        "max_steps": steps,
        "overrides": [
            f"--data.init_args.task_config={{frames_per_clip: 2, height: {size}, width: {size}}}",
            f"--data.init_args.batch_size={batch}",
            *overrides,
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
    log = (tmp_path / "runs" / "image_vae" / metadata["version"] / "train.log").read_text()
    return metadata, index, log


@pytest.mark.slow
def test_two_process_ddp_run_reports_metrics_through_pipes(tmp_path, monkeypatch):
    """torchrun --nproc_per_node=2 on CPU, tiny image VAE, 2 steps (~30 s on 2 cores)."""
    metadata, index, log = run_image_vae(
        tmp_path, monkeypatch, size=32, clips=4, steps=2, batch=1,
        overrides=("--trainer.accelerator=cpu",),
        gpus=0, processes_per_node=2, cpu_threads=1,
    )  # fmt: skip
    # reported by PipesReporter on rank 0 and merged into the asset's metadata
    assert metadata["global_step"] == 2 == index["global_step"]
    assert metadata["train/loss"] == pytest.approx(index["metrics"]["train/loss"])
    assert metadata["training_seconds"] > 0
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
    metadata, index, log = run_image_vae(
        tmp_path, monkeypatch, size=64, clips=8, steps=20, batch=2, gpus=2
    )
    assert metadata["global_step"] == 20 == index["global_step"]
    assert metadata["train/loss"] == pytest.approx(index["metrics"]["train/loss"])
    print(log[-3000:])
    assert "distributed_backend=nccl" in log
    assert "All distributed processes registered. Starting with 2 processes" in log
