"""Resume checkpoints: saved every N steps and atomically, a crashed fit continues from the last
one, complete checkpoints are told from truncated ones, and the run to resume is found by the
config hash of its version (never a published one)."""

import types
from pathlib import Path

import lightning as L
import pytest
import torch

from training import pipes as pipes_module
from training.checkpointing import PARTIAL, ResumeCheckpoint, resume_checkpoint_from_env
from training.launch import TrainingLauncher
from training.pipes import PipesReporter
from training.resume import (
    CKPT_DIR_ENV,
    CKPT_EVERY_ENV,
    find_resumable,
    is_complete_checkpoint,
    last_checkpoint,
)


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = (self.layer(batch) - 1.0).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class _Crash(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError(f"crash at step {self.step}")


class _Recorder:
    def __init__(self):
        self.custom, self.materializations = [], []
        self.log = types.SimpleNamespace(info=lambda m: None, error=lambda m: None)

    def report_custom_message(self, payload):
        self.custom.append(payload)

    def report_asset_materialization(self, metadata=None):
        self.materializations.append(metadata)

    def close(self):
        pass


def _trainer(callbacks, steps: int) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=True,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


def _loader():
    torch.manual_seed(1)
    return torch.utils.data.DataLoader(torch.randn(64, 2), batch_size=4)


def test_crashed_fit_resumes_from_the_last_checkpoint(tmp_path, monkeypatch):
    ckpt_dir = tmp_path / "run" / "ckpt"
    with pytest.raises(RuntimeError, match="crash at step 5"):
        _trainer([ResumeCheckpoint(ckpt_dir, 2), _Crash(5)], 8).fit(_Tiny(), _loader())
    last = ckpt_dir / "last.ckpt"
    assert is_complete_checkpoint(last)
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["last.ckpt"]  # no partial, no top-k
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert saved["global_step"] == 4  # the save at step 4; the crash came at step 5

    recorder = _Recorder()
    monkeypatch.setattr(pipes_module, "is_pipes_process", lambda: True)
    monkeypatch.setattr(pipes_module, "open_dagster_pipes", lambda: recorder)
    reporter = PipesReporter(every_s=0)
    trainer = _trainer([ResumeCheckpoint(ckpt_dir, 2), reporter], 8)
    trainer.fit(_Tiny(), _loader(), ckpt_path=str(last))
    assert reporter.start_step == 4 and trainer.global_step == 8
    assert [m["step"] for m in recorder.custom] == [5, 6, 7, 8]  # continued, not restarted
    (final,) = recorder.materializations
    assert final["resumed_from_step"] == 4 and final["global_step"] == 8
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 8


def test_checkpoint_is_replaced_atomically(tmp_path, monkeypatch):
    ckpt_dir = tmp_path / "ckpt"
    _trainer([ResumeCheckpoint(ckpt_dir, 1)], 2).fit(_Tiny(), _loader())
    last = ckpt_dir / "last.ckpt"
    before = last.read_bytes()

    def dying_save(self, checkpoint, path, storage_options=None):
        Path(path).write_bytes(b"PK\x03\x04 half a zip")  # the writer dies mid-write
        raise RuntimeError("node lost")

    monkeypatch.setattr(
        "lightning.fabric.plugins.io.torch_io.TorchCheckpointIO.save_checkpoint", dying_save
    )
    with pytest.raises(RuntimeError, match="node lost"):
        _trainer([ResumeCheckpoint(ckpt_dir, 1)], 4).fit(_Tiny(), _loader(), ckpt_path=str(last))
    assert last.read_bytes() == before and is_complete_checkpoint(last)
    partial = ckpt_dir / f"last.ckpt{PARTIAL}"
    assert partial.exists() and not is_complete_checkpoint(partial)


def test_truncated_or_missing_checkpoints_are_incomplete(tmp_path):
    _trainer([ResumeCheckpoint(tmp_path, 1)], 1).fit(_Tiny(), _loader())
    data = (tmp_path / "last.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.ckpt").write_bytes(b"")
    assert is_complete_checkpoint(tmp_path / "last.ckpt")
    for name in ("cut.ckpt", "empty.ckpt", "missing.ckpt"):
        assert not is_complete_checkpoint(tmp_path / name)


def _run(runs: Path, model: str, version: str, ckpt: bytes | None) -> None:
    run = runs / model / version
    run.mkdir(parents=True)
    if ckpt is not None:
        last_checkpoint(run).parent.mkdir()
        last_checkpoint(run).write_bytes(ckpt)


def test_find_resumable_picks_the_newest_unpublished_run_with_a_checkpoint(tmp_path):
    _trainer([ResumeCheckpoint(tmp_path / "src", 1)], 1).fit(_Tiny(), _loader())
    good = (tmp_path / "src" / "last.ckpt").read_bytes()
    runs = tmp_path / "runs"
    _run(runs, "vae", "20260101T000000Z-aaaaaaaa", good)
    _run(runs, "vae", "20260102T000000Z-aaaaaaaa", good)  # published below
    _run(runs, "vae", "20260103T000000Z-aaaaaaaa", good[:100])  # truncated
    _run(runs, "vae", "20260104T000000Z-aaaaaaaa", None)  # crashed before its first save
    _run(runs, "vae", "20260105T000000Z-bbbbbbbb", good)  # another config
    _run(runs, "other", "20260106T000000Z-aaaaaaaa", good)  # another model
    published = {"20260102T000000Z-aaaaaaaa"}.__contains__
    assert find_resumable(runs, "vae", "aaaaaaaa", published) == "20260101T000000Z-aaaaaaaa"
    assert find_resumable(runs, "vae", "bbbbbbbb", published) == "20260105T000000Z-bbbbbbbb"
    assert find_resumable(runs, "vae", "cccccccc", published) is None
    assert find_resumable(runs, "nothing", "aaaaaaaa", published) is None
    assert find_resumable(runs, "vae", "aaaaaaaa", lambda v: True) is None
    launcher = TrainingLauncher(runs)
    assert launcher.resumable_version("vae", "bbbbbbbb", published) == "20260105T000000Z-bbbbbbbb"


def test_launcher_resume_arguments_and_environment(tmp_path):
    logs: list[tuple[str, str]] = []
    context = types.SimpleNamespace(
        log=types.SimpleNamespace(
            info=lambda m: logs.append(("info", m)), warning=lambda m: logs.append(("warning", m))
        )
    )
    launcher = TrainingLauncher(tmp_path / "runs", checkpoint_every_n_steps=50)
    run = launcher.run_dir("vae", "v1")
    assert launcher.resume_args(context, run) == []
    assert launcher.checkpoint_environment(run) == {
        CKPT_DIR_ENV: str(run / "ckpt"),
        CKPT_EVERY_ENV: "50",
    }
    assert TrainingLauncher(tmp_path, checkpoint_every_n_steps=0).checkpoint_environment(run) == {}
    last_checkpoint(run).parent.mkdir(parents=True)
    last_checkpoint(run).write_bytes(b"PK\x03\x04 truncated")
    assert launcher.resume_args(context, run) == []
    assert logs[-1][0] == "warning" and "incomplete" in logs[-1][1]
    _trainer([ResumeCheckpoint(run / "ckpt", 1)], 1).fit(_Tiny(), _loader())
    assert launcher.resume_args(context, run) == [f"--ckpt_path={last_checkpoint(run)}"]


def test_resume_checkpoint_from_env(tmp_path):
    assert resume_checkpoint_from_env({}) is None
    assert resume_checkpoint_from_env({CKPT_DIR_ENV: str(tmp_path), CKPT_EVERY_ENV: "0"}) is None
    callback = resume_checkpoint_from_env({CKPT_DIR_ENV: str(tmp_path / "c"), CKPT_EVERY_ENV: "7"})
    assert isinstance(callback, ResumeCheckpoint)
    assert callback.dirpath == str(tmp_path / "c") and callback._every_n_train_steps == 7
    assert callback.save_last is True and callback.save_top_k == 0
    with pytest.raises(ValueError, match="WONDERFORGE_CKPT_EVERY_N_STEPS='often'"):
        resume_checkpoint_from_env({CKPT_DIR_ENV: str(tmp_path), CKPT_EVERY_ENV: "often"})
