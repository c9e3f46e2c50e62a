"""Frame stage III (DMD) sharded, on 2 CPU processes over gloo, as ``BlockShardStrategy`` runs
it: ``FrameDMDModule.configure_model`` shards the generator, the frozen real score and the fake
score with FSDP2 (a unit per ``FrameBlock`` and per network), then the manual optimisation of
``training_step``: a generator update then a fake-score update (two backward passes in one
step), then a fake-only step with the generator idle. The real score never changes, the other
two do, and rank 0 exports the consolidated generator. Then the real thing: a Lightning fit of
the tiny stage-III config with ``BlockShardStrategy`` through torchrun on 2 CPU processes.

(Lightning's FSDP1 ``FSDPStrategy`` cannot run this: it wraps the whole module in one root unit
and calls ``training_step`` inside that unit's forward, so the first ``backward`` meets a unit
still in its forward — "Expects BACKWARD_PRE or BACKWARD_POST state but got FORWARD", Lightning
issues 19626 / 19685.)"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.training.test_frame_stage3 import frame_batch, make
from tests.training.test_sharding import _free_port

TINY_DIT = {"num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 32, "sample_size": 8}


def _step(module, opt_g, opt_f, batch: dict, update_generator: bool) -> torch.Tensor:
    """One DMD iteration as ``FrameDMDModule.training_step`` runs it (manual optimisation)."""
    from training.modules.frame_common import encode_frame_batch

    _, cond = encode_frame_batch(module.vae, batch)
    if update_generator:
        terms = module.generator_loss(cond)
        opt_g.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt_g.step()
        x0 = terms["x0"].detach()
    else:
        with torch.no_grad():
            x0, _ = module.generator_sample(cond)
    loss_f = module.fake_loss(x0, cond)
    opt_f.zero_grad(set_to_none=True)
    loss_f.backward()
    opt_f.step()
    return loss_f.detach()


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule

    from training.sharding import full_state_dict

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    module = make(teacher_config=dict(TINY_DIT)).train()
    init = {k: v.detach().clone() for k, v in module.state_dict().items()}
    # what BlockShardStrategy provides before configure_model: the mesh and the trainer
    module._device_mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("data_parallel",))
    module._trainer = SimpleNamespace(precision="32-true", strategy=None, is_global_zero=rank == 0)
    module.configure_model()
    module.configure_model()  # idempotent (Lightning may call it again on restarts)
    units = sum(isinstance(m, FSDPModule) for m in module.modules())
    opt_g, opt_f = module.configure_optimizers()  # over the sharded parameters, as Lightning
    torch.manual_seed(1 + rank)  # each rank its own noise and timesteps, as under DDP sampling
    batch = frame_batch(B=1, seed=rank)
    losses = [_step(module, opt_g, opt_f, batch, update).item() for update in (True, False)]
    module.on_train_end()  # a collective
    full = full_state_dict(module)  # another collective: the reference on rank 0
    if rank == 0:
        module.export_pretrained(Path(out) / "export")
        torch.save(
            {"init": init, "full": full, "units": units, "losses": losses},
            Path(out) / "results.pt",
        )
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_fsdp2_sharded_dmd_steps_train_generator_and_fake_only_and_export(tmp_path, monkeypatch):
    """~30 s on 2 cores."""
    import torch.multiprocessing as mp

    from training.modules.frame_common import load_frame_export

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))  # children import tests
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    results = torch.load(tmp_path / "results.pt")
    assert results["units"] == 3 * (1 + TINY_DIT["num_layers"])  # per network: itself + blocks
    assert all(torch.isfinite(torch.tensor(results["losses"])))
    init, full = results["init"], results["full"]
    assert set(full) == set(init)

    def moved(prefix: str) -> float:
        return max(
            (full[k] - v).abs().max().item() for k, v in init.items() if k.startswith(prefix)
        )

    assert moved("real_score.") == 0.0  # frozen: never changes, sharded or not
    assert moved("fake_score.") > 0 and moved("generator.") > 0
    generator = load_frame_export(tmp_path / "export").dit
    for k, v in generator.state_dict().items():
        torch.testing.assert_close(v, full[f"generator.{k}"], msg=k)


@pytest.mark.slow
def test_lightning_fits_stage3_with_block_shard_strategy_on_two_processes(tmp_path):
    """The real path, ~40 s on 2 cores: ``torchrun --nproc_per_node=2 -m training.cli fit`` of
    the tiny stage-III config with ``BlockShardStrategy`` over gloo (Lightning's FSDP2
    strategy runs on CPU too): configure_model shards, manual optimisation steps, rank 0
    publishes the consolidated generator, which loads and denoises."""
    import subprocess
    import sys

    from datagen.shards import write_shard_set
    from datagen.store import LocalStore
    from tests.fixtures.clips import make_clip
    from training.cli import CONFIG_ROOT
    from training.modules.frame_common import encode_frame_batch, load_frame_export

    store = LocalStore(tmp_path / "store")
    clips = [make_clip(f"w0-{i}", num_frames=8, height=64, width=64, seed=i) for i in range(2)]
    write_shard_set(store, "shards/synthetic/w0", clips, "synthetic", "w0", progress=False)
    manifest = store.uri("shards/synthetic/w0/manifest.json")
    repo = Path(__file__).resolve().parents[2]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "training.cli", "fit", "--config", str(CONFIG_ROOT / "frame_stage3" / "tiny.yaml"),
        f"--data.init_args.train_sets=[{manifest}]", "--data.init_args.batch_size=2",
        "--trainer.max_steps=4", "--trainer.accelerator=cpu", "--trainer.devices=2",
        '--trainer.strategy={"class_path": "training.sharding.BlockShardStrategy"}',
    ]  # fmt: skip
    env = {**os.environ, "WONDERFORGE_STORE": store.uri(""), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "Starting with 2 processes" in log
    index = store.get_json("checkpoints/frame_stage3/tiny/index.json")
    assert index["global_step"] == 4 and index["stage"] == 3
    assert index["timesteps"] == [999, 200]
    assert all(torch.isfinite(torch.tensor(v)) for v in index["metrics"].values())
    export = load_frame_export(store.root / "checkpoints/frame_stage3/tiny")
    target, condition = encode_frame_batch(export.vae, frame_batch(B=1))
    with torch.no_grad():
        out = export.dit(torch.randn_like(target), torch.tensor([999]), condition)
    assert out.shape == target.shape and torch.isfinite(out).all()
