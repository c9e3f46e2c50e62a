"""The camera video model sharded with its plan (``video_wrap_policy``) on 2 CPU processes over
gloo, as Lightning's ``FSDPStrategy`` wraps it: a training step from *frames* (the video task's
batches), so the frozen VAE encodes inside the step — through ``encode``, not a module forward,
which only works if the VAE's weights are gathered then (it lives in the root unit)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from tests.training.test_sharding import _free_port

REPO = Path(__file__).resolve().parents[2]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    sys.path.insert(0, str(REPO / "benchmarks"))
    import video_model as bench  # benchmarks/video_model.py: the tiny module and its batch

    from training.modules.video_model import CameraVideoModule
    from training.sharding import video_wrap_policy

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    module = CameraVideoModule(**bench.module_kwargs("tiny", torch.device("cpu")))
    batch = bench.make_batch(module, 1, True, torch.device("cpu"))  # frames, no latents
    module.forward = module.diffusion_loss  # the root's forward, as Lightning routes the step
    wrapped = FSDP(
        module,
        auto_wrap_policy=video_wrap_policy,
        use_orig_params=True,
        device_id=torch.device("cpu"),
    )
    trainable = [p for p in wrapped.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = wrapped(batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if rank == 0:
        torch.save({"losses": losses}, Path(out) / "results.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_sharded_video_model_steps_on_frames(tmp_path, monkeypatch):
    """~30 s on 2 cores."""
    import torch.multiprocessing as mp

    monkeypatch.syspath_prepend(str(REPO))  # children import tests and the benchmark helpers
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    losses = torch.load(tmp_path / "results.pt")["losses"]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
