"""Periodic resume checkpoints: `ResumeCheckpoint` saves `<dir>/last.ckpt` every N steps, atomically.

`training.cli` adds one to every `fit` when the launcher sets `WONDERFORGE_CKPT_DIR` (and
`WONDERFORGE_CKPT_EVERY_N_STEPS`); with `--ckpt_path <dir>/last.ckpt` a crashed run continues
from the last save (model, optimizer, schedulers, loop counters, callback states). The file is
written under a temporary name and renamed, so a crash while saving leaves the previous
checkpoint intact. These are Lightning checkpoints (pickled, our own files only); what is
published is the safetensors export.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from training.resume import CKPT_DIR_ENV, CKPT_EVERY_ENV, LAST

PARTIAL = ".partial"


class ResumeCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` that keeps only `<dirpath>/last.ckpt`, saved every
    `every_n_train_steps` optimizer steps and replaced atomically (temp file + rename)."""

    def __init__(self, dirpath: str | os.PathLike, every_n_train_steps: int):
        if every_n_train_steps < 1:
            raise ValueError(f"every_n_train_steps must be >= 1, got {every_n_train_steps}")
        super().__init__(
            dirpath=str(dirpath),
            save_last=True,
            save_top_k=0,
            every_n_train_steps=every_n_train_steps,
            enable_version_counter=False,
        )

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        partial = filepath + PARTIAL
        super()._save_checkpoint(trainer, partial)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            os.replace(partial, filepath)
        trainer.strategy.barrier("ResumeCheckpoint.rename")
        self._last_checkpoint_saved = filepath


def resume_checkpoint_from_env(env: dict[str, str] | None = None) -> ResumeCheckpoint | None:
    """A `ResumeCheckpoint` when the launcher asked for one (WONDERFORGE_CKPT_DIR set and
    WONDERFORGE_CKPT_EVERY_N_STEPS > 0), else None."""
    env = os.environ if env is None else env
    directory = env.get(CKPT_DIR_ENV)
    every = env.get(CKPT_EVERY_ENV, "0")
    try:
        steps = int(every)
    except ValueError:
        raise ValueError(f"{CKPT_EVERY_ENV}={every!r} is not an integer") from None
    if not directory or steps <= 0:
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    return ResumeCheckpoint(directory, steps)


__all__ = ["LAST", "ResumeCheckpoint", "resume_checkpoint_from_env"]
