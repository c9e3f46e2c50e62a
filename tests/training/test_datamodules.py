"""Streaming datamodules: shapes per task, epoch lengths, DDP disjointness, S3, bad samples."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from datagen.shards import write_shard_set
from datagen.store import LocalStore
from tests.fixtures.clips import make_clip
from training.data import ClipDataModule

H, W = 24, 32


def _write_set(store, name, n, per_shard, start=0):
    clips = [make_clip(key=f"{name}-{i:04d}", seed=start + i) for i in range(n)]
    write_shard_set(
        store,
        f"shards/{name}",
        clips,
        "test",
        name,
        progress=False,
        max_samples_per_shard=per_shard,
    )
    return store.uri(f"shards/{name}/manifest.json")


@pytest.fixture
def local_set(tmp_path):
    return _write_set(LocalStore(tmp_path / "store"), "setA", 6, per_shard=2)


def _first_batch(task, sets, **kw):
    dm = ClipDataModule(task, sets, batch_size=2, epoch_batches=1, **kw)
    return next(iter(dm.train_dataloader()))


def test_video_batches(local_set):
    batch = _first_batch("video", [local_set], task_config={"num_frames": 8, "stride": 2})
    assert batch["frames"].shape == (2, 8, 3, H, W)
    assert batch["plucker"].shape == (2, 8, 6, H, W)
    assert batch["first_frame"].shape == (2, 3, H, W)
    torch.testing.assert_close(batch["first_frame"], batch["frames"][:, 0])
    torch.testing.assert_close(batch["c2w"][:, 0], torch.eye(4).expand(2, 4, 4))
    assert (batch["frame_idx"].diff(dim=1) == 2).all()
    assert batch["caption"] == ["a test scene"] * 2
    assert 0.0 <= batch["frames"].min() and batch["frames"].max() <= 1.0


def test_lalrm_batches_unseen_disjoint_from_seen(local_set):
    cfg = {"num_context": 5, "stride": 2, "num_seen": 3, "num_unseen": 4, "use_latents": False}
    batch = _first_batch("lalrm", [local_set], task_config=cfg)
    assert batch["context"].shape == (2, 5, 3, H, W)
    assert batch["context_plucker"].shape == (2, 5, 6, H, W)
    assert batch["sup"].shape == (2, 7, 3, H, W)
    for b in range(2):
        context = set(batch["context_idx"][b].tolist())
        seen = batch["sup_idx"][b][batch["sup_is_seen"][b]].tolist()
        unseen = batch["sup_idx"][b][~batch["sup_is_seen"][b] & batch["sup_valid"][b]].tolist()
        assert set(seen) <= context and len(seen) == 3
        assert not set(unseen) & context and len(unseen) == 4


def test_frame_and_image_batches(local_set):
    batch = _first_batch("frame", [local_set], task_config={"shuffle_prob": 1.0})
    for name in ("target", "anchor", "reference"):
        assert batch[name].shape == (2, 3, H, W)
    assert batch["anchor_mask"].shape == (2, 1, H, W)
    assert ((batch["anchor"] * (1 - batch["anchor_mask"])) == 0).all()
    assert batch["target_c2w"].shape == (2, 4, 4)
    batch = _first_batch("image", [local_set], task_config={"caption_level": 2})
    assert batch["image"].shape == (2, 3, H, W)
    assert batch["caption"] == ["a crack in the paint"] * 2


@pytest.mark.parametrize("workers", [0, 2])
def test_epoch_length_is_explicit_and_epochs_reshuffle(local_set, workers):
    dm = ClipDataModule(
        "image", [local_set], batch_size=2, num_workers=workers, epoch_batches=4, seed=3
    )
    loader = dm.train_dataloader()
    first = [tuple(b["key"]) for b in loader]
    second = [tuple(b["key"]) for b in loader]
    assert len(first) == len(second) == 4
    assert first != second


def test_default_epoch_length_from_manifest(local_set):
    dm = ClipDataModule("frame", [local_set], batch_size=4)
    dm.setup()
    assert dm.batches_per_rank() == 6 * 12 // 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, sets, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        dm = ClipDataModule("video", sets, batch_size=1, task_config={"num_frames": 4})
        batches = [b["key"][0] for b in dm.train_dataloader()]
        gathered = [None] * world
        dist.all_gather_object(gathered, batches)
        if rank == 0:
            results.put(gathered)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("per_shard", [1, 6], ids=["split-by-shard", "split-by-sample"])
def test_two_gloo_ranks_read_disjoint_samples_and_equal_batches(tmp_path, per_shard):
    sets = [_write_set(LocalStore(tmp_path / "s"), "ddp", 6, per_shard=per_shard)]
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    mp.start_processes(
        _ddp_worker, args=(2, _free_port(), sets, results), nprocs=2, start_method="spawn"
    )
    rank0, rank1 = results.get()
    assert len(rank0) == len(rank1) == 3
    assert not set(rank0) & set(rank1)
    assert sorted(rank0 + rank1) == [f"ddp-{i:04d}" for i in range(6)]


def test_bad_sample_raise_or_skip(tmp_path):
    store = LocalStore(tmp_path / "s")
    uri = _write_set(store, "bad", 4, per_shard=4)
    manifest_dir = "shards/bad"
    shard = next(k for k in store.list(manifest_dir) if k.endswith(".tar"))
    data = bytearray(store.get_bytes(shard))
    marker = data.find(b'"schema_version":1')
    data[marker : marker + 18] = b'"schema_version":9'
    store.put_bytes(shard, bytes(data))
    with pytest.raises(Exception, match="schema version 9"):
        next(iter(ClipDataModule("image", [uri], batch_size=2, epoch_batches=2).train_dataloader()))
    dm = ClipDataModule("image", [uri], batch_size=2, epoch_batches=3, on_error="skip")
    keys = [k for b in dm.train_dataloader() for k in b["key"]]
    assert len(keys) == 6 and "bad-0000" not in keys


@pytest.mark.s3
def test_stream_from_s3(s3_server, s3_store, monkeypatch):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    _write_set(s3_store, "s3set", 3, per_shard=2)
    uri = s3_store.uri("shards/s3set")
    assert uri.startswith("s3://")
    dm = ClipDataModule("image", [uri], batch_size=3, epoch_batches=2, seed=1)
    batches = list(dm.train_dataloader())
    assert len(batches) == 2 and batches[0]["image"].shape == (3, 3, H, W)
    assert {k for b in batches for k in b["key"]} <= {f"s3set-{i:04d}" for i in range(3)}
    assert np.isfinite(batches[0]["image"].numpy()).all()


def test_one_pass_decodes_each_clip_once(local_set, monkeypatch):
    import training.data.stream as stream

    calls = []
    original = stream.decode_clip

    def counting(members, where, fields=None):
        calls.append(where)
        return original(members, where, fields)

    monkeypatch.setattr(stream, "decode_clip", counting)
    dm = ClipDataModule("image", [local_set], batch_size=2, epoch_batches=3)
    batches = list(dm.train_dataloader())
    assert len(batches) == 3
    assert len(calls) == 6
