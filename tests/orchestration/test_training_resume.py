"""A training asset whose process is SIGKILLed mid-run is retried by its RetryPolicy and resumes
from the run's last checkpoint (same version, same folder), not from step 0; the crash leaves
nothing published and `latest` only ever points at a complete, verified checkpoint."""

import json
from pathlib import Path

import dagster as dg
import pytest

from assets.training_assets import image_vae
from datagen.shards import write_shard_set
from datagen.store import LocalStore
from tests.fixtures.clips import make_clip
from training import registry
from training.launch import TrainingLauncher
from training.publish import fetch_published
from training.runlog import exit_code

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """Two launches of a 6-step tiny image VAE (killed at step 3, resumed at 2): ~40 s."""
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "store")
    clips = [make_clip(f"w0-{i}", num_frames=9, height=32, width=32, seed=i) for i in range(2)]
    write_shard_set(store, "shards/synthetic/w0", clips, "synthetic", "w0", progress=False)
    marker = tmp_path / "killed.json"
    kill = {
        "class_path": "tests.fixtures.faults.KillOnceAtStep",
        "init_args": {"step": 3, "marker": str(marker), "model": "image_vae"},
    }
    config = {
        "size": "tiny",
        "max_steps": 6,
        "overrides": [
            "--data.init_args.task_config={frames_per_clip: 2, height: 32, width: 32}",
            "--data.init_args.batch_size=2",
            f"--trainer.callbacks+={json.dumps(kill)}",
        ],
    }
    runs = tmp_path / "runs"
    launcher = TrainingLauncher(
        runs,
        gpus=0,
        cpu_threads=1,
        store_uri=store.uri(""),
        report_every_s=0.0,
        checkpoint_every_n_steps=2,
        env={"PYTHONPATH": str(REPO)},  # the fault-injection callback lives in tests/
    )
    result = dg.materialize(
        [image_vae],
        resources={"store": store, "launcher": launcher},
        run_config={"ops": {"image_vae": {"config": config}}},
        raise_on_error=False,
    )
    assert result.success

    crash = json.loads(marker.read_text())
    assert crash["step"] == 3
    assert crash["store_keys"] == []  # nothing published, no latest.json at the moment of the crash
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 1

    (event,) = result.get_asset_materialization_events()
    metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    version = metadata["version"]
    assert metadata["global_step"] == 6
    assert metadata["resumed_from_step"] == 2  # continued from the step-2 checkpoint
    assert [p.name for p in (runs / "image_vae").iterdir()] == [version]  # one folder, reused
    log = (runs / "image_vae" / version / "train.log").read_text()
    assert log.count("fault injection: SIGKILL at step 3") == 1
    assert "[exit code -9]" in log
    resume_line = f"Restoring states from the checkpoint path at {runs / 'image_vae' / version}"
    assert resume_line in log and log.index(resume_line) > log.index("[exit code -9]")
    assert exit_code(runs / "image_vae" / version / "train.log") == 0
    assert not (runs / "image_vae" / version / "ckpt").exists()  # dropped after success

    pointer = registry.latest(store, "image_vae")
    assert pointer["version"] == version and pointer["global_step"] == 6
    fetched = fetch_published(store, registry.resolve(store, "image_vae"), tmp_path / "fetched")
    assert (fetched / "config.json").is_file()  # every file matched its sha256
