"""PipesReporter: silent outside Dagster, rate-limited progress and a final materialization on
rank 0 under Pipes; a real `PipesSubprocessClient` run of the training CLI reaches Dagster."""

import sys

import dagster as dg
import lightning as L
import pytest
import torch

from datagen.shards import write_shard_set
from datagen.store import LocalStore
from tests.fixtures.clips import make_clip
from training import pipes as pipes_module
from training.callbacks import PublishCheckpoint
from training.cli import WonderforgeCLI, config_path
from training.launch import EVERY_S_ENV
from training.pipes import PipesReporter, is_pipes_process


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def export_pretrained(self, directory):
        torch.save(self.layer.state_dict(), f"{directory}/weights.pt")
        return {}


def _fit(callbacks, steps: int = 5) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    loader = torch.utils.data.DataLoader(torch.randn(40, 2), batch_size=4)
    trainer.fit(_Tiny(), loader)
    return trainer


class _Recorder:
    """Stands in for the PipesContext: records what the reporter sends."""

    def __init__(self):
        self.custom, self.logs, self.materializations, self.closed = [], [], [], False
        recorder = self

        class _Log:
            def info(self, message):
                recorder.logs.append(("info", message))

            def error(self, message):
                recorder.logs.append(("error", message))

        self.log = _Log()

    def report_custom_message(self, payload):
        self.custom.append(payload)

    def report_asset_materialization(self, metadata=None):
        self.materializations.append(metadata)

    def close(self):
        self.closed = True


@pytest.fixture
def no_pipes(monkeypatch):
    for name in ("DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"):
        monkeypatch.delenv(name, raising=False)


def test_noop_without_pipes(no_pipes, monkeypatch):
    def forbidden():
        raise AssertionError("open_dagster_pipes must not be called outside Dagster")

    monkeypatch.setattr(pipes_module, "open_dagster_pipes", forbidden)
    assert not is_pipes_process()
    reporter = PipesReporter(every_s=0)
    trainer = _fit([reporter])
    assert trainer.global_step == 5
    assert reporter.pipes is None and reporter.reports == 0


@pytest.fixture
def recorder(monkeypatch):
    fake = _Recorder()
    monkeypatch.setattr(pipes_module, "is_pipes_process", lambda: True)
    monkeypatch.setattr(pipes_module, "open_dagster_pipes", lambda: fake)
    return fake


def test_progress_is_rate_limited_and_the_end_is_reported(recorder, tmp_path):
    publish = PublishCheckpoint("checkpoints/tiny/v1", store=str(tmp_path / "store"))
    reporter = PipesReporter(every_s=3600)
    _fit([publish, reporter], steps=6)
    assert reporter.reports == 1 and len(recorder.custom) == 1  # only the first step
    first = recorder.custom[0]
    assert first["step"] == 1 and first["max_steps"] == 6 and "train/loss" in first["metrics"]
    (final,) = recorder.materializations
    assert final["global_step"] == 6 and final["train/loss"] == pytest.approx(
        publish.index["metrics"]["train/loss"]
    )
    assert final["checkpoint_uri"] == {"raw_value": publish.uri, "type": "url"}
    assert final["training_seconds"] >= 0
    assert recorder.closed and reporter.pipes is None
    assert any("fit finished at step 6" in message for _, message in recorder.logs)


def test_every_step_when_interval_is_zero(recorder, monkeypatch):
    monkeypatch.setenv(EVERY_S_ENV, "0")
    reporter = PipesReporter()
    _fit([reporter], steps=4)
    assert [m["step"] for m in recorder.custom] == [1, 2, 3, 4]
    assert "checkpoint_uri" not in recorder.materializations[0]  # nothing was published


def test_only_global_rank_zero_reports(recorder, monkeypatch):
    monkeypatch.setattr(L.Trainer, "is_global_zero", property(lambda self: False))
    reporter = PipesReporter(every_s=0)
    _fit([reporter], steps=2)
    assert recorder.custom == [] and recorder.materializations == []


def test_failure_is_logged_and_the_session_closed(recorder):
    class Boom(_Tiny):
        def training_step(self, batch, batch_idx):
            raise RuntimeError("exploded")

    reporter = PipesReporter(every_s=0)
    trainer = L.Trainer(max_steps=2, logger=False, enable_progress_bar=False, callbacks=[reporter])
    loader = torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=4)
    with pytest.raises(RuntimeError, match="exploded"):
        trainer.fit(Boom(), loader)
    assert ("error", "training failed: RuntimeError: exploded") in recorder.logs
    assert recorder.closed and recorder.materializations == []


def test_cli_adds_the_reporter_once(no_pipes, monkeypatch):
    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    cli = WonderforgeCLI.__new__(WonderforgeCLI)
    cli.trainer = L.Trainer(logger=False, enable_progress_bar=False, callbacks=[])
    cli.before_fit()
    cli.before_fit()
    assert sum(isinstance(c, PipesReporter) for c in cli.trainer.callbacks) == 1


@pytest.mark.slow
def test_pipes_subprocess_fit_materializes_with_metrics(tmp_path, monkeypatch):
    """A real `python -m training.cli fit` under `dg.PipesSubprocessClient` (15-30 s)."""
    data = LocalStore(tmp_path / "data")
    clips = [make_clip(f"p-{i}", num_frames=9, height=32, width=32, seed=i) for i in range(2)]
    write_shard_set(data, "shards/p", clips, "test", "p", progress=False)
    monkeypatch.setenv("WONDERFORGE_STORE", str(tmp_path / "models"))
    command = [
        sys.executable,
        "-m",
        "training.cli",
        "fit",
        "--config",
        str(config_path("image_vae", "tiny")),
        f"--data.init_args.train_sets=[{data.uri('shards/p/manifest.json')}]",
        "--data.init_args.task_config={frames_per_clip: 2, height: 32, width: 32}",
        "--data.init_args.batch_size=2",
        "--trainer.max_steps=3",
        f"--trainer.default_root_dir={tmp_path / 'runs'}",
        "--trainer.enable_progress_bar=false",
        "--trainer.callbacks.init_args.prefix=checkpoints/image_vae/pipes",
    ]

    @dg.asset
    def trained(context: dg.AssetExecutionContext, client: dg.PipesSubprocessClient):
        invocation = client.run(context=context, command=command)
        progress = invocation.get_custom_messages()
        assert progress and progress[0]["step"] == 1
        return invocation.get_materialize_result()

    client = dg.PipesSubprocessClient(env={"OMP_NUM_THREADS": "1", EVERY_S_ENV: "0"})
    result = dg.materialize([trained], resources={"client": client})
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    index = LocalStore(tmp_path / "models").get_json("checkpoints/image_vae/pipes/index.json")
    assert metadata["global_step"].value == 3 == index["global_step"]
    assert metadata["train/loss"].value == pytest.approx(index["metrics"]["train/loss"])
    assert metadata["checkpoint_uri"].value == (
        LocalStore(tmp_path / "models").uri("checkpoints/image_vae/pipes")
    )
