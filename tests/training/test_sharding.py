"""Sharding plans (training/sharding.py): the wrap policies pick the transformer blocks, the
paper_fsdp configs differ from the paper ones only in the strategy, and — 2 CPU processes over
gloo — FSDP1 (the policy) and FSDP2 (``fully_shard_blocks``) training steps of a tiny LaLRM /
FrameDiT consolidate to the same weights as the unsharded step; a Lightning ``FSDPStrategy`` fit
of ``LaLRMModule`` exports the consolidated weights from rank 0."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from models.frame.dit import FrameBlock, FrameDiT
from models.lalrm import LaLRM, lalrm_config
from models.lalrm.model import Block as LaLRMBlock
from training.cli import CONFIG_ROOT
from training.sharding import (
    LALRM_BLOCKS,
    block_units,
    block_wrap_policy,
    frame_wrap_policy,
    lalrm_wrap_policy,
    video_wrap_policy,
)

TINY_DIT = {"num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 16, "sample_size": 4}
LR = 0.05
FSDP_CONFIGS = [("lalrm", "lalrm_wrap_policy"), ("frame_stage2", "frame_wrap_policy")]
FSDP_CONFIGS.append(("frame_stage3", None))  # FSDP2: the module shards itself (configure_model)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_policies_wrap_exactly_the_transformer_blocks():
    torch.manual_seed(0)
    lalrm = LaLRM(lalrm_config("tiny"))
    dit = FrameDiT(**TINY_DIT)
    for model, policy, block in (
        (lalrm, lalrm_wrap_policy, LaLRMBlock),
        (dit, frame_wrap_policy, FrameBlock),
    ):
        wrapped = [m for m in model.modules() if policy(m, recurse=False)]
        assert wrapped and all(isinstance(m, block) for m in wrapped)
        assert all(policy(m, recurse=True) for m in model.modules())  # descend everywhere
        assert not any(video_wrap_policy(m, recurse=False) for m in model.modules())
    assert len(block_units(lalrm, LALRM_BLOCKS)) == lalrm.config.depth == 2
    assert len([m for m in dit.modules() if frame_wrap_policy(m, False)]) == 2
    custom = block_wrap_policy([nn.Linear])
    assert custom(nn.Linear(2, 2), False) and not custom(nn.ReLU(), False)
    with pytest.raises(TypeError, match=r"nn\.Module subclasses"):
        block_wrap_policy(["Block"])


@pytest.mark.parametrize(("model", "policy"), FSDP_CONFIGS)
def test_paper_fsdp_configs_change_only_the_strategy(model, policy):
    paper = yaml.safe_load((CONFIG_ROOT / model / "paper.yaml").read_text())
    sharded = yaml.safe_load((CONFIG_ROOT / model / "paper_fsdp.yaml").read_text())
    strategy = sharded["trainer"].pop("strategy")
    paper["trainer"].pop("strategy")
    assert sharded == paper
    if policy is None:
        assert strategy == {"class_path": "training.sharding.BlockShardStrategy"}
    else:
        assert strategy["class_path"] == "training.sharding.ShardedStrategy"
        args = strategy["init_args"]
        assert args["auto_wrap_policy"] == f"training.sharding.{policy}"
        assert args["sharding_strategy"] == "FULL_SHARD" and args["state_dict_type"] == "full"
    assert sharded["trainer"]["precision"] == "bf16-mixed"
    init = sharded["model"]["init_args"]
    checkpointing = init.get("gradient_checkpointing") or init.get("model", {}).get(
        "gradient_checkpointing"
    )
    assert checkpointing is True  # activation checkpointing per block, inside the FSDP units


def test_sharded_strategy_keeps_the_batch_dtypes_and_reduces_in_fp32():
    from lightning.pytorch.plugins.precision import FSDPPrecision

    from training.sharding import BF16_MIXED, ShardedStrategy

    mixed = ShardedStrategy(precision_plugin=FSDPPrecision("bf16-mixed")).mixed_precision_config
    assert mixed is BF16_MIXED
    assert mixed.param_dtype == torch.bfloat16 and mixed.reduce_dtype == torch.float32
    assert mixed.cast_root_forward_inputs is False  # cameras stay fp32 (the parent casts them)
    full = ShardedStrategy(precision_plugin=FSDPPrecision("32-true")).mixed_precision_config
    assert full.param_dtype == torch.float32  # other precisions as Lightning's FSDPStrategy


def test_block_shard_strategy_is_data_parallel_over_every_process(monkeypatch):
    from training.sharding import BlockShardStrategy, same_on_all_ranks

    monkeypatch.setenv("WORLD_SIZE", "8")
    strategy = BlockShardStrategy()
    assert strategy._data_parallel_size == 8 and strategy._tensor_parallel_size == 1
    assert strategy._save_distributed_checkpoint is False  # full state dicts, as the FSDP1 plans
    assert BlockShardStrategy(data_parallel_size=4)._data_parallel_size == 4
    assert same_on_all_ranks(3) == 3  # no process group: the value itself


def test_paper_fsdp_config_validates(capsys, monkeypatch):
    from training.cli import run

    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    path = CONFIG_ROOT / "lalrm" / "paper_fsdp.yaml"
    with pytest.raises(SystemExit) as done:
        run(["fit", "--config", str(path), "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    policy = printed["trainer"]["strategy"]["init_args"]["auto_wrap_policy"]
    assert policy == "training.sharding.lalrm_wrap_policy"
    path = CONFIG_ROOT / "frame_stage3" / "paper_fsdp.yaml"
    with pytest.raises(SystemExit) as done:
        run(["fit", "--config", str(path), "--print_config"])
    assert done.value.code in (0, None)
    strategy = yaml.safe_load(capsys.readouterr().out)["trainer"]["strategy"]
    assert strategy["class_path"] == "training.sharding.BlockShardStrategy"
    assert strategy["init_args"]["save_distributed_checkpoint"] is False


# ---- two processes over gloo -----------------------------------------------------------------


def _lalrm_inputs(B: int = 2):
    """latents [B, 8, 2, 4, 4] and Plücker [B, 5, 6, 32, 32] of the tiny config, and a target."""
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(B, 8, 2, 4, 4, generator=g)
    plucker = torch.randn(B, 5, 6, 32, 32, generator=g)
    return latents, plucker


def _lalrm_loss(model, latents, plucker):
    return model(latents, plucker).pow(2).mean()


def _frame_inputs(B: int = 2):
    from models.frame import FrameCondition

    g = torch.Generator().manual_seed(2)
    K = torch.tensor([[28.8, 0, 16.0], [0, 28.8, 16.0], [0, 0, 1]]).expand(B, 3, 3).clone()  # 32 px
    c2w = torch.eye(4).repeat(B, 1, 1)
    c2w[:, 0, 3] = torch.linspace(0.1, 0.4, B)
    cond = FrameCondition(
        reference=torch.randn(B, 4, 4, 4, generator=g),
        anchor=torch.randn(B, 4, 4, 4, generator=g),
        target_K=K,
        target_c2w=c2w,
        reference_K=K.clone(),
        reference_c2w=torch.eye(4).repeat(B, 1, 1),
    )
    x = torch.randn(B, 4, 4, 4, generator=g)
    t = torch.tensor([300, 800])
    return x, t, cond


def _frame_loss(model, x, t, cond):
    return (model(x, t, cond) - x).pow(2).mean()


def _sgd_step(model, loss_fn, *inputs) -> None:
    """Two momentum-SGD steps (linear in the gradients: reference and sharded compare tightly)."""
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        loss_fn(model, *inputs).backward()
        opt.step()


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    from training.sharding import FRAME_BLOCKS, full_state_dict, fully_shard_blocks

    torch.set_num_threads(1)
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world)}
    os.environ.update(env, RANK=str(rank), LOCAL_RANK=str(rank), NODE_RANK="0")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    results: dict = {}
    half = slice(rank, rank + 1)  # each rank trains on one of the two samples

    # FSDP1 with the LaLRM plan (what Lightning's FSDPStrategy builds)
    latents, plucker = _lalrm_inputs()
    torch.manual_seed(0)
    model = LaLRM(lalrm_config("tiny"))
    results["lalrm_init"] = {k: v.clone() for k, v in model.state_dict().items()}
    sharded = FSDP(
        model,
        auto_wrap_policy=lalrm_wrap_policy,
        use_orig_params=True,
        device_id=torch.device("cpu"),
    )
    results["lalrm_units"] = sum(isinstance(m, FSDP) for m in sharded.modules())
    local = sum(p.numel() for p in sharded.parameters())
    results["lalrm_local_numel"] = local
    _sgd_step(sharded, _lalrm_loss, latents[half], plucker[half])
    results["lalrm_fsdp1"] = full_state_dict(sharded)

    # FSDP2 (fully_shard per FrameBlock, then the root)
    x, t, cond = _frame_inputs()
    torch.manual_seed(0)
    dit = FrameDiT(**TINY_DIT)
    results["frame_init"] = {k: v.clone() for k, v in dit.state_dict().items()}
    mesh = init_device_mesh("cpu", (world,))
    fully_shard_blocks(dit, FRAME_BLOCKS, mesh=mesh)
    _sgd_step(dit, _frame_loss, x[half], t[half], cond.index(half))
    results["frame_fsdp2"] = full_state_dict(dit)

    # Lightning FSDPStrategy: fit LaLRMModule one step, export from rank 0
    results["lightning"] = _lightning_fit(rank, Path(out))
    if rank == 0:
        torch.save(results, Path(out) / "results.pt")
    dist.barrier()
    dist.destroy_process_group()


def _lightning_batch() -> dict:
    """A 2-clip LaLRM batch with latents (the tiny LaLRM needs no VAE then)."""
    from tests.training.test_lalrm_module import fixed_batch

    batch = fixed_batch(clips=2)
    g = torch.Generator().manual_seed(3)
    T = (batch["context"].shape[1] - 1) // 4 + 1
    batch["latents"] = torch.randn(2, 8, T, 4, 4, generator=g)
    return batch


def _lightning_module():
    from training.modules.lalrm import LaLRMModule

    torch.manual_seed(0)
    # eps 1: Adam's first step ~ lr·g (no sign amplification of round-off between the runs)
    return LaLRMModule(size="tiny", perceptual="none", lr=1e-2, weight_decay=0.0, eps=1.0)


def _lightning_fit(rank: int, out: Path) -> dict:
    """What Lightning's FSDPStrategy does on GPUs (it refuses CPU accelerators): wrap the whole
    LaLRMModule in FSDP with the LaLRM plan, train one step, then the module's ``on_train_end``
    gathers through ``strategy.lightning_module_state_dict()`` and rank 0 exports."""
    from types import SimpleNamespace

    from lightning.pytorch.strategies import FSDPStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    from training.sharding import full_state_dict

    class CPUFSDPStrategy(FSDPStrategy):
        def __init__(self, wrapped):  # no Lightning set-up: only the state-dict gather
            self.wrapped = wrapped

        def lightning_module_state_dict(self):
            return full_state_dict(self.wrapped)

    batch = _lightning_batch()
    mine = {k: v[rank : rank + 1] if torch.is_tensor(v) else v for k, v in batch.items()}
    module = _lightning_module().train()
    # the root unit's forward must run (it gathers the root's parameters): as Lightning does
    # with training_step, route the step through the wrapper
    module.forward = lambda b: module.loss_terms(b)["loss"]
    wrapped = FSDP(
        module,
        auto_wrap_policy=lalrm_wrap_policy,
        use_orig_params=True,
        device_id=torch.device("cpu"),
    )
    opt = module.configure_optimizers()  # over the original (sharded) parameters
    opt.zero_grad()
    wrapped(mine).backward()
    opt.step()
    module._trainer = SimpleNamespace(strategy=CPUFSDPStrategy(wrapped), is_global_zero=rank == 0)
    module.on_train_end()
    if rank == 0:
        module.export_pretrained(out / "export")
    return {"consolidated": module._export_state is not None}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_fsdp_steps_consolidate_to_the_unsharded_weights(tmp_path, monkeypatch):
    """~40 s on 2 cores: FSDP1 + FSDP2 + a Lightning FSDP fit in one pair of processes."""
    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))  # children import tests
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    results = torch.load(tmp_path / "results.pt")

    # the unsharded reference steps on both samples at once
    latents, plucker = _lalrm_inputs()
    model = LaLRM(lalrm_config("tiny"))
    model.load_state_dict(results["lalrm_init"])
    _sgd_step(model, _lalrm_loss, latents, plucker)
    full = results["lalrm_fsdp1"]
    assert results["lalrm_units"] == 1 + 2  # root + one unit per block
    assert results["lalrm_local_numel"] < 0.6 * sum(p.numel() for p in model.parameters())
    assert set(full) == set(model.state_dict())
    moved = 0.0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(full[k], v, rtol=1e-4, atol=1e-6, msg=k)
        moved = max(moved, (v - results["lalrm_init"][k]).abs().max().item())
    assert moved > 1e-4  # the step changed the weights

    x, t, cond = _frame_inputs()
    dit = FrameDiT(**TINY_DIT)
    dit.load_state_dict(results["frame_init"])
    _sgd_step(dit, _frame_loss, x, t, cond)
    full = results["frame_fsdp2"]
    assert set(full) == set(dit.state_dict())
    for k, v in dit.state_dict().items():
        torch.testing.assert_close(full[k], v, rtol=1e-4, atol=1e-6, msg=k)

    # Lightning FSDP: rank 0 exported the gathered weights = one unsharded AdamW step
    assert results["lightning"] == {"consolidated": True}  # rank 0's
    exported = load_file(tmp_path / "export" / "lalrm.safetensors")
    module = _lightning_module()
    opt = module.configure_optimizers()
    opt.zero_grad()
    module.train()
    module.loss_terms(_lightning_batch())["loss"].backward()
    opt.step()
    reference = module.model.state_dict()
    assert set(exported) == set(reference)
    for k, v in reference.items():
        torch.testing.assert_close(exported[k], v, rtol=1e-4, atol=1e-6, msg=k)


def test_causal_layout_refuses_per_block_sharding():
    """The causal layout calls its blocks' layers piecewise: sharded blocks would hand it empty
    shards, so it says so instead (one process, FSDP2 over gloo)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    from training.sharding import FRAME_BLOCKS, fully_shard_blocks

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        dit = FrameDiT(**TINY_DIT, condition_attention="causal")
        fully_shard_blocks(dit, FRAME_BLOCKS, mesh=init_device_mesh("cpu", (1,)))
        x, t, cond = _frame_inputs()
        with pytest.raises(RuntimeError, match="runs its blocks piecewise"):
            dit(x, t, cond)
    finally:
        dist.destroy_process_group()
