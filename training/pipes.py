"""Reporting a training run back to Dagster through Pipes (no-op when Dagster did not launch it).

`PipesReporter` is added to every `fit` by `training.cli`. Under Dagster Pipes (the launcher sets
DAGSTER_PIPES_CONTEXT / DAGSTER_PIPES_MESSAGES), global rank 0 opens the Pipes context and

- at the first step and then at most every `every_s` seconds sends a progress line to the run's
  event log and a custom message `{"step", "max_steps", "epoch", "elapsed_s", "metrics"}`;
- at the end of fit reports the asset materialization: the final scalar metrics, `global_step`,
  `checkpoint_uri` (what `PublishCheckpoint` published), `training_seconds` and, when the run
  resumed from a checkpoint, `resumed_from_step`.

Other ranks, and runs outside Dagster, send nothing.
"""

from __future__ import annotations

import os
import time

import lightning as L
from dagster_pipes import PipesContext, PipesEnvVarParamsLoader, open_dagster_pipes

from training.callbacks import PublishCheckpoint, scalar_metrics

EVERY_S_ENV = "WONDERFORGE_PIPES_EVERY_S"


def is_pipes_process() -> bool:
    """Whether Dagster Pipes launched this process (its bootstrap variables are set)."""
    return PipesEnvVarParamsLoader().is_dagster_pipes_process()


def _format(metrics: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items()))


class PipesReporter(L.Callback):
    """Streams rate-limited step metrics and the final materialization to Dagster (rank 0).

    every_s: minimum seconds between progress reports (default: $WONDERFORGE_PIPES_EVERY_S or 30).
    """

    def __init__(self, every_s: float | None = None):
        super().__init__()
        self.every_s = float(every_s if every_s is not None else os.environ.get(EVERY_S_ENV, 30))
        self.pipes: PipesContext | None = None
        self.reports = 0
        self._start = self._last = 0.0
        self._fit_ended = False
        self.start_step = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero and self.pipes is None and is_pipes_process():
            self.pipes = open_dagster_pipes()
            self._start = time.monotonic()
            self._last = -float("inf")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start_step = trainer.global_step  # > 0 when the run resumed from a checkpoint
        if self.pipes is not None and self.start_step:
            self.pipes.log.info(f"resumed from a checkpoint at step {self.start_step}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        if self.pipes is None or now - self._last < self.every_s:
            return
        self._last = now
        metrics = scalar_metrics(trainer)
        step, max_steps = trainer.global_step, trainer.max_steps
        self.pipes.report_custom_message(
            {
                "step": step,
                "max_steps": max_steps,
                "epoch": trainer.current_epoch,
                "elapsed_s": round(now - self._start, 3),
                "metrics": metrics,
            }
        )
        total = f"/{max_steps}" if max_steps and max_steps > 0 else ""
        self.pipes.log.info(f"step {step}{total}: {_format(metrics) or 'no metrics yet'}")
        self.reports += 1

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_ended = self.pipes is not None

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """After every callback's on_fit_end (so after PublishCheckpoint): report and close."""
        if stage != "fit" or self.pipes is None:
            return
        if self._fit_ended:
            self.pipes.report_asset_materialization(metadata=self.final_metadata(trainer))
            self.pipes.log.info(f"fit finished at step {trainer.global_step}")
        self._close()

    def final_metadata(self, trainer: L.Trainer) -> dict:
        """Final metrics, global_step, training_seconds, the published checkpoint_uri and
        resumed_from_step (only for resumed runs)."""
        metadata: dict = dict(scalar_metrics(trainer))
        metadata["global_step"] = trainer.global_step
        if self.start_step:
            metadata["resumed_from_step"] = self.start_step
        metadata["training_seconds"] = round(time.monotonic() - self._start, 3)
        publisher = next((c for c in trainer.callbacks if isinstance(c, PublishCheckpoint)), None)
        if publisher is not None and publisher.uri:
            metadata["checkpoint_uri"] = {"raw_value": publisher.uri, "type": "url"}
        return metadata

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self.pipes is not None:
            self.pipes.log.error(f"training failed: {type(exception).__name__}: {exception}")
            self._close()

    def _close(self) -> None:
        if self.pipes is not None:
            self.pipes.close()
            self.pipes = None
