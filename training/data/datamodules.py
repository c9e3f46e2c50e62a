"""LightningDataModules streaming clips from shard sets, one per training task."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from training.data.collate import collate
from training.data.frame_task import FrameTaskConfig, frame_samples
from training.data.image_task import ImageTaskConfig, image_samples
from training.data.lalrm_task import LaLRMTaskConfig, lalrm_sample
from training.data.stream import clip_pipeline, describe_sets, resolve_shards
from training.data.video_task import VideoTaskConfig, video_sample


@dataclasses.dataclass(frozen=True)
class Task:
    """A training task: its config type, its per-clip transform, samples per clip, fields read."""

    name: str
    config_type: type
    transform: Callable
    samples_per_clip: Callable[[object], int]
    fields: frozenset[str]


TASKS = {
    "video": Task("video", VideoTaskConfig, video_sample, lambda c: 1, frozenset()),
    "lalrm": Task("lalrm", LaLRMTaskConfig, lalrm_sample, lambda c: 1, frozenset({"latents"})),
    "frame": Task("frame", FrameTaskConfig, frame_samples, lambda c: 12, frozenset({"pcr"})),
    "image": Task(
        "image", ImageTaskConfig, image_samples, lambda c: c.frames_per_clip, frozenset()
    ),
}


def _apply(transform, config, clip, rng):
    return transform(clip, rng, config)


class ClipStream(IterableDataset):
    """An epoch-aware stream of batches: each epoch reshuffles with (seed, epoch)."""

    def __init__(self, epoch_seeded_pipeline: Callable[[int], object]):
        super().__init__()
        self.make_pipeline = epoch_seeded_pipeline
        self.epoch = 0

    def __iter__(self):
        return iter(self.make_pipeline(self.epoch))


class EpochDataLoader(DataLoader):
    """Advances the stream's epoch in the main process before workers copy the dataset."""

    def __iter__(self):
        self.dataset.epoch += 1
        return super().__iter__()


class ClipDataModule(L.LightningDataModule):
    """Streams a task's batches from shard sets given as manifest or set-folder URIs.

    epoch_batches: batches per rank per epoch (equal on every rank); None derives it from the
    sets' sample counts. With `num_workers` workers, each yields epoch_batches // num_workers.
    """

    def __init__(
        self,
        task: str,
        train_sets: list[str],
        task_config: dict | object | None = None,
        batch_size: int = 4,
        num_workers: int = 0,
        epoch_batches: int | None = None,
        seed: int = 0,
        sampling: str = "partitioned",
        shuffle_buffer: int = 64,
        on_error: str = "raise",
    ):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; one of {sorted(TASKS)}")
        self.task = TASKS[task]
        cfg = task_config if task_config is not None else {}
        self.task_config = self.task.config_type(**cfg) if isinstance(cfg, dict) else cfg
        self.train_sets = list(train_sets)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.epoch_batches, self.seed = epoch_batches, seed
        self.sampling, self.shuffle_buffer, self.on_error = sampling, shuffle_buffer, on_error
        self.shards = None

    def setup(self, stage: str | None = None) -> None:
        if self.shards is None:
            self.shards = resolve_shards(self.train_sets)

    def world_size(self) -> int:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.world_size
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size()
        return 1

    def batches_per_rank(self) -> int:
        if self.epoch_batches is not None:
            return self.epoch_batches
        clips = sum(ref.nsamples for ref in self.shards)
        samples = clips * self.task.samples_per_clip(self.task_config)
        return max(1, samples // (self.world_size() * self.batch_size))

    def dataset_summary(self) -> dict[str, int]:
        self.setup()
        return describe_sets(self.shards)

    def _pipeline(self, batches_per_worker: int, epoch: int):
        return clip_pipeline(
            self.shards,
            partial(_apply, self.task.transform, self.task_config),
            batch_size=self.batch_size,
            batches_per_worker=batches_per_worker,
            collate_fn=collate,
            seed=self.seed * 100_003 + epoch,
            sampling=self.sampling,
            shuffle_buffer=self.shuffle_buffer,
            on_error=self.on_error,
            fields=set(self.task.fields),
        )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        workers = max(1, self.num_workers)
        per_worker = math.ceil(self.batches_per_rank() / workers)
        stream = ClipStream(partial(self._pipeline, per_worker))
        return EpochDataLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
        )


def datamodule_for(task: str, train_sets: list[str], **kwargs) -> ClipDataModule:
    """Convenience constructor (one name per task: video, lalrm, frame, image)."""
    return ClipDataModule(task, train_sets, **kwargs)
