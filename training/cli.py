"""Training entry point: `python -m training.cli fit --config training/configs/<model>/<size>.yaml`.

Lightning's CLI reads one YAML per model and size; any field can be overridden on the command
line (`--trainer.max_steps 100`, `--data.init_args.batch_size 8`). The resolved config is saved
beside the logs and published with the checkpoint. Every `fit` also gets a `PipesReporter`
(training/pipes.py), which reports to Dagster when Dagster launched the run and does nothing
otherwise.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.cli import LightningCLI

from training.checkpointing import ResumeCheckpoint, resume_checkpoint_from_env
from training.config_files import CONFIG_ROOT, SIZES, config_path
from training.pipes import PipesReporter

__all__ = ["CONFIG_ROOT", "SIZES", "WonderforgeCLI", "config_path", "main", "run"]


class WonderforgeCLI(LightningCLI):
    """LightningCLI that appends a `PipesReporter` to the trainer's callbacks before `fit`
    (after the config's own callbacks, so it reports what PublishCheckpoint published), and a
    `ResumeCheckpoint` when the launcher sets WONDERFORGE_CKPT_DIR (training/checkpointing.py)."""

    def before_fit(self) -> None:
        callbacks = self.trainer.callbacks
        resume = resume_checkpoint_from_env()  # the launcher's periodic resume checkpoints
        if resume is not None and not any(isinstance(c, ResumeCheckpoint) for c in callbacks):
            callbacks.append(resume)
        if not any(isinstance(c, PipesReporter) for c in callbacks):
            callbacks.append(PipesReporter())


def run(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the CLI; tests pass `args`."""
    return WonderforgeCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def main() -> None:
    run()


if __name__ == "__main__":
    main()
