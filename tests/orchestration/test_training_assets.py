"""Training assets through the real subprocess launcher: a tiny image VAE is trained, published,
promoted to latest and described in metadata; a failing run names its config and quotes its log;
the launcher's command, environment and log wrapper."""

import signal
import subprocess
import sys
import time

import dagster as dg
import pytest

from assets.training_assets import image_vae
from datagen.shards import write_shard_set
from datagen.store import LocalStore
from orchestration.resources import artifact_store, training_launcher
from tests.fixtures.clips import make_clip
from training import registry
from training.launch import TrainingLauncher
from training.loss_curves import csv_metric_series
from training.runlog import exit_code, tail

TINY = {
    "size": "tiny",
    "max_steps": 2,
    "overrides": [
        "--data.init_args.task_config={frames_per_clip: 2, height: 32, width: 32}",
        "--data.init_args.batch_size=2",
        "--trainer.log_every_n_steps=1",  # metrics.csv gets a row per step (the loss curve)
    ],
}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A temp project home whose store holds one tiny synthetic shard set (2 clips, 32×32)."""
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "home" / "store")
    clips = [make_clip(f"w0-{i}", num_frames=9, height=32, width=32, seed=i) for i in range(2)]
    write_shard_set(store, "shards/synthetic/w0", clips, "synthetic", "w0", progress=False)
    return store


def materialize(config: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [image_vae],
        resources={"store": artifact_store, "launcher": training_launcher},
        run_config={
            "ops": {"image_vae": {"config": config}},
            "resources": {"launcher": {"config": {"cpu_threads": 1, "report_every_s": 0.0}}},
        },
        raise_on_error=False,
    )


def test_image_vae_trains_publishes_and_promotes(home):
    result = materialize(TINY)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    version = metadata["version"]
    prefix = registry.version_prefix("image_vae", version)
    assert metadata["uri"] == metadata["checkpoint_uri"] == home.uri(prefix)
    assert registry.resolve(home, "image_vae") == prefix
    assert registry.latest(home, "image_vae")["uri"] == home.uri(prefix)
    index = home.get_json(f"{prefix}/index.json")
    manifest = home.uri("shards/synthetic/w0/manifest.json")
    assert index["inputs"] == metadata["inputs"] == [manifest]
    assert index["global_step"] == metadata["global_step"] == 2
    assert metadata["loss"] == pytest.approx(index["metrics"]["train/loss"])
    assert metadata["train/loss"] == pytest.approx(metadata["loss"])  # reported through Pipes
    assert metadata["training_seconds"] > 0
    assert metadata["preview"].startswith("![originals / reconstructions](data:image/png;base64,")
    assert 0 < metadata["preview_psnr"] < 100
    run_dir = home.root.parent / "runs" / "image_vae" / version
    assert [s for s, _ in csv_metric_series(run_dir)["train/loss"]] == [0, 1]  # from metrics.csv
    curve = metadata["loss_curve"]
    assert curve.startswith("![image_vae loss curves](data:image/png;base64,iVBORw0KGgo")
    assert event.materialization.tags["dagster/data_version"] == version
    log = home.root.parent / "runs" / "image_vae" / version / "train.log"
    assert exit_code(log) == 0 and "max_steps=2" in log.read_text()


def test_failing_training_names_the_config_and_quotes_the_log(home):
    bad = {**TINY, "overrides": ["--trainer.max_steps=plenty"]}
    result = materialize(bad)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    while error.cause is not None and "TrainingFailed" not in error.cls_name:
        error = error.cause
    message = error.message
    assert "TrainingFailed" in error.cls_name
    assert "training image_vae failed (exit code 2)" in message
    assert "configs/image_vae/tiny.yaml" in message and "--trainer.max_steps=plenty" in message
    assert "last 40 lines of the log" in message and "plenty" in message.split("---")[-1]
    assert registry.latest(home, "image_vae") is None


def test_launcher_command_environment_and_modes(tmp_path, monkeypatch):
    launcher = TrainingLauncher(tmp_path, gpus=4, cpu_threads=1, store_uri="s3://b/p")
    config = tmp_path / "c.yaml"
    monkeypatch.setattr("training.launch.visible_gpus", lambda: 2)
    assert launcher.processes() == 2
    command = launcher.command(config, ["--x=1"], launcher.processes())
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert command[5:] == ["-m", "training.cli", "fit", "--config", str(config), "--x=1"]
    monkeypatch.setattr("training.launch.visible_gpus", lambda: 0)
    assert launcher.processes() == 1
    assert launcher.command(config, [], 1)[1:4] == ["-m", "training.cli", "fit"]
    env = launcher.environment()
    assert env["WONDERFORGE_STORE"] == "s3://b/p" and env["OMP_NUM_THREADS"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in env
    assert TrainingLauncher(tmp_path, gpus=0).environment()["CUDA_VISIBLE_DEVICES"] == ""
    assert launcher.run_dir("m", "v") == tmp_path / "m" / "v"
    with pytest.raises(ValueError, match="unknown launcher mode 'mesos'"):
        TrainingLauncher(tmp_path, mode="mesos")
    with pytest.raises(ValueError, match="mode 'slurm' needs its `slurm` settings"):
        TrainingLauncher(tmp_path, mode="slurm")


def test_runlog_tees_output_records_the_exit_code_and_forwards_sigint(tmp_path):
    log = tmp_path / "a.log"
    script = "import sys\nfor i in range(60): print('line', i)\nsys.exit(3)"
    done = subprocess.run(
        [sys.executable, "-m", "training.runlog", str(log), "--", sys.executable, "-c", script],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3 and "line 59" in done.stdout
    assert exit_code(log) == 3
    assert tail(log, 2).splitlines() == ["line 58", "line 59"]

    log = tmp_path / "b.log"
    waits = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: (print('stopping', flush=True), sys.exit(5)))\n"
        "print('ready', flush=True)\ntime.sleep(30)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.runlog", str(log), "--", sys.executable, "-c", waits],
        stdout=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not (log.is_file() and b"ready" in log.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 5
    assert exit_code(log) == 5 and tail(log).endswith("stopping")
