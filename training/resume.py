"""Resuming crashed training runs: where their Lightning checkpoints live and which run to resume.

A training run writes periodic Lightning checkpoints to `<run dir>/ckpt/last.ckpt` (see
training/checkpointing.py; the launcher switches it on through the environment variables
below). A version is `<timestamp>-<hash of the resolved config>`, so a re-materialization with the
same config finds the crashed run's folder by its hash suffix and continues it (same version,
same folder, `--ckpt_path <run dir>/ckpt/last.ckpt`) instead of starting from step 0. A version
that was published is never resumed. Standard library only: the Dagster process imports it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

CKPT_DIR = "ckpt"
LAST = "last.ckpt"
CKPT_DIR_ENV = "WONDERFORGE_CKPT_DIR"  # where the run saves its resume checkpoints
CKPT_EVERY_ENV = "WONDERFORGE_CKPT_EVERY_N_STEPS"  # how often (optimizer steps)


def last_checkpoint(run_dir: str | Path) -> Path:
    """`<run dir>/ckpt/last.ckpt` (it may not exist)."""
    return Path(run_dir) / CKPT_DIR / LAST


def is_complete_checkpoint(path: str | Path) -> bool:
    """Whether `path` is a complete torch checkpoint: `torch.save` writes a zip archive whose
    central directory comes last, so a truncated file fails this test."""
    path = Path(path)
    try:
        return path.is_file() and path.stat().st_size > 0 and zipfile.is_zipfile(path)
    except OSError:
        return False


def config_suffix(version: str) -> str:
    """The config-hash part of a version name (`20260101T000000Z-1a2b3c4d` → `1a2b3c4d`)."""
    return version.rsplit("-", 1)[-1]


def find_resumable(
    runs_dir: str | Path,
    model: str,
    config_hash: str,
    is_published: Callable[[str], bool],
    needs_checkpoint: bool = True,
) -> str | None:
    """The newest unpublished version of `model` under `runs_dir` whose config hash is
    `config_hash` and (with `needs_checkpoint`) that holds a complete `ckpt/last.ckpt`; None when
    there is none. `is_published(version)` tells whether the registry holds that version."""
    model_dir = Path(runs_dir) / model
    if not model_dir.is_dir():
        return None
    candidates = sorted(
        (p for p in model_dir.iterdir() if p.is_dir() and config_suffix(p.name) == config_hash),
        key=lambda p: p.name,
        reverse=True,
    )
    for run_dir in candidates:
        if needs_checkpoint and not is_complete_checkpoint(last_checkpoint(run_dir)):
            continue
        if is_published(run_dir.name):
            continue
        return run_dir.name
    return None
