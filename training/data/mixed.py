"""Two ClipDataModule streams interleaved batch by batch with a fixed ratio (LaLRM stage 2:
benchmark clips + generated out-of-domain clips, Wonderland §3.3, D.2).

Every batch comes wholly from one stream, so the two may use different task configs (generated
clips carry ``latents`` and use their whole clip as context) and still collate. Epoch length
follows ClipDataModule's rules: ``epoch_batches`` per rank (default: the two sets' clips together
in one pass, ``clips // (world_size · batch_size)``), of which ``round(mix_ratio · E)`` come from the
mix stream; each of ``num_workers`` workers yields ``ceil(n / workers)`` batches of each stream.
The order of the two streams' batches inside a worker's epoch is a seeded shuffle of
``(seed, epoch, reader slot)``: the same on every run.
"""

from __future__ import annotations

import math
import random
from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader
from webdataset.utils import pytorch_worker_info

from training.data.datamodules import ClipDataModule, ClipStream, EpochDataLoader


def interleave(primary, mix, n_primary: int, n_mix: int, rng: random.Random):
    """Yield ``n_primary`` batches of iterator ``primary`` and ``n_mix`` of ``mix`` in a shuffled
    order drawn from ``rng``."""
    order = [0] * n_primary + [1] * n_mix
    rng.shuffle(order)
    for which in order:
        yield next(mix) if which else next(primary)


class MixedClipDataModule(L.LightningDataModule):
    """``train_sets`` (with ``task_config``) and ``mix_sets`` (with ``mix_task_config``, default
    the same) of one task, interleaved with a fraction ``mix_ratio`` of batches from the mix sets.
    Other arguments as ``ClipDataModule``'s (shared by both streams; the mix stream is seeded
    with ``seed + 1``)."""

    def __init__(
        self,
        task: str,
        train_sets: list[str],
        mix_sets: list[str],
        mix_ratio: float = 0.5,
        task_config: dict | object | None = None,
        mix_task_config: dict | object | None = None,
        batch_size: int = 4,
        num_workers: int = 0,
        epoch_batches: int | None = None,
        seed: int = 0,
        sampling: str = "partitioned",
        shuffle_buffer: int = 64,
        on_error: str = "raise",
    ):
        super().__init__()
        if not 0.0 <= mix_ratio <= 1.0:
            raise ValueError(f"mix_ratio must lie in [0, 1], got {mix_ratio}")
        common = dict(
            batch_size=batch_size,
            num_workers=num_workers,
            sampling=sampling,
            shuffle_buffer=shuffle_buffer,
            on_error=on_error,
        )
        self.primary = ClipDataModule(task, train_sets, task_config, seed=seed, **common)
        mix_config = task_config if mix_task_config is None else mix_task_config
        self.mix = ClipDataModule(task, mix_sets, mix_config, seed=seed + 1, **common)
        self.mix_ratio, self.epoch_batches, self.seed = mix_ratio, epoch_batches, seed
        self.batch_size, self.num_workers = batch_size, num_workers

    def setup(self, stage: str | None = None) -> None:
        if self.mix_ratio < 1.0:
            self.primary.setup(stage)
        if self.mix_ratio > 0.0:
            self.mix.setup(stage)

    def world_size(self) -> int:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.world_size
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size()
        return 1

    def split(self) -> tuple[int, int]:
        """(primary, mix) batches per rank per epoch."""
        self.setup()
        total = self.epoch_batches
        if total is None:
            clips = sum(
                ref.nsamples for dm in (self.primary, self.mix) if dm.shards for ref in dm.shards
            )
            total = max(1, clips // (self.world_size() * self.batch_size))
        n_mix = round(self.mix_ratio * total)
        return total - n_mix, n_mix

    def batches_per_rank(self) -> int:
        return sum(self.split())

    def dataset_summary(self) -> dict[str, int]:
        """{set folder name: samples} of both streams' sets."""
        self.setup()
        summary = {}
        for dm in (self.primary, self.mix):
            if dm.shards:
                summary.update(dm.dataset_summary())
        return summary

    def _pipeline(self, n_primary: int, n_mix: int, epoch: int):
        rank, _, worker, workers = pytorch_worker_info()
        primary = iter(self.primary._pipeline(n_primary, epoch)) if n_primary else iter(())
        mix = iter(self.mix._pipeline(n_mix, epoch)) if n_mix else iter(())
        rng = random.Random(f"{self.seed}-{epoch}-{rank * workers + worker}")
        return interleave(primary, mix, n_primary, n_mix, rng)

    def train_dataloader(self) -> DataLoader:
        n_primary, n_mix = self.split()
        workers = max(1, self.num_workers)
        stream = ClipStream(
            partial(self._pipeline, math.ceil(n_primary / workers), math.ceil(n_mix / workers))
        )
        return EpochDataLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
        )
