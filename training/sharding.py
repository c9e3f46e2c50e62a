"""Sharding plans for the paper-size models (FSDP), and consolidation of sharded weights.

Plan per model (``docs/scaling.md`` has the memory arithmetic and the launch commands):

- one FSDP unit per transformer block — the auto-wrap policies below, named by dotted path in a
  config's ``trainer.strategy.init_args.auto_wrap_policy``: ``video_wrap_policy`` (CogVideoX
  blocks of the frozen base and of the ControlNet copy, T5 blocks; the VAE stays in the root), ``lalrm_wrap_policy``
  (the 24 LaLRM blocks), ``frame_wrap_policy`` (the 28 ``FrameBlock``\\ s of every FrameDiT: the
  stage-II model; in stage III the generator, the frozen real score and the fake score alike);
  everything outside the blocks (embeddings, heads, VAE of the frame model) lives in the root
  unit;
- full sharding (``FULL_SHARD``: parameters, gradients and optimizer state split over the ranks);
- activation checkpointing per block: the models' own ``gradient_checkpointing`` (non-reentrant
  ``torch.utils.checkpoint`` around each block, inside its FSDP unit) — the configs keep it on and
  do not add Lightning's ``activation_checkpointing_policy`` on top (that would recompute twice);
- bf16 mixed precision: ``precision: bf16-mixed`` with ``ShardedStrategy`` (bf16 compute copies
  of fp32 sharded master weights under bf16 autocast, fp32 gradient reduction, and the batch left
  in its own dtypes: Lightning's plain ``FSDPStrategy`` casts every input tensor to bf16, cameras
  included, which PRoPE and the Plücker rays cannot afford); ``BF16_MIXED`` is the same policy for
  code that wraps models itself (benchmarks, tests).

Consolidation: a sharded run's module holds only its shard, so a rank-0-only
``export_pretrained`` cannot read the weights. ``consolidate_for_export`` (call it on every rank
from ``on_train_end``, as ``training.modules.video_model`` does) gathers the full state dict
onto rank 0's CPU; the module's ``export_pretrained`` then writes the registry's safetensors
from it (``unsharded_copy`` rebuilds a plain network around it where the export needs a
module). ``full_state_dict`` does the same for models wrapped outside Lightning (FSDP1, FSDP2 or
plain).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import torch
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXBlock
from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy
from torch import Tensor, nn
from torch.distributed.fsdp import MixedPrecision
from transformers.models.t5.modeling_t5 import T5Block

from models.frame.dit import FrameBlock
from models.lalrm.model import Block as LaLRMBlock

# not the VAE: the step calls its ``encode`` (not its forward), so its weights must be gathered
# with the root unit's for the whole step; FSDP1 would hand ``encode`` empty shards
VIDEO_BLOCKS: tuple[type[nn.Module], ...] = (CogVideoXBlock, T5Block)
LALRM_BLOCKS: tuple[type[nn.Module], ...] = (LaLRMBlock,)
FRAME_BLOCKS: tuple[type[nn.Module], ...] = (FrameBlock,)

BF16_MIXED = MixedPrecision(
    param_dtype=torch.bfloat16,
    reduce_dtype=torch.float32,
    buffer_dtype=torch.bfloat16,
    cast_root_forward_inputs=False,
)


class ShardedStrategy(FSDPStrategy):
    """Lightning's ``FSDPStrategy`` whose ``bf16-mixed`` policy is ``BF16_MIXED``: fp32 gradient
    reduction, and the batch keeps its dtypes (the plain strategy casts every input to bf16 at
    the root unit; autocast, which Lightning enters for mixed precision, picks compute dtypes).
    An explicit ``mixed_precision`` argument or another precision wins as in the parent."""

    @property
    def mixed_precision_config(self) -> MixedPrecision | None:
        config = super().mixed_precision_config
        plugin = getattr(self, "precision_plugin", None)
        if self.mixed_precision is None and getattr(plugin, "precision", None) == "bf16-mixed":
            return BF16_MIXED
        return config


class BlockShardStrategy(ModelParallelStrategy):
    """Lightning's FSDP2 strategy (``ModelParallelStrategy``) as pure data-parallel sharding:
    one mesh dimension ``data_parallel`` over every process (``WORLD_SIZE``, which torchrun sets
    before the strategy is built), no tensor parallelism. The LightningModule shards itself in
    ``configure_model`` (``fully_shard_blocks`` on its networks). This is the plan for modules
    that call ``backward`` inside ``training_step`` (manual optimisation: DMD stage III), which
    FSDP1 under Lightning's ``FSDPStrategy`` cannot run (its root unit is still in its forward
    when the first backward reaches it). Checkpoints are full state dicts by default."""

    def __init__(self, save_distributed_checkpoint: bool = False, **kwargs: Any):
        import os

        world = int(os.environ.get("WORLD_SIZE", "1"))
        kwargs.setdefault("data_parallel_size", world)
        kwargs.setdefault("tensor_parallel_size", 1)
        super().__init__(save_distributed_checkpoint=save_distributed_checkpoint, **kwargs)


def bf16_shard_policy(precision: str | None) -> Any:
    """FSDP2 ``MixedPrecisionPolicy`` for a Lightning precision: bf16 compute and fp32 gradient
    reduction for ``bf16-*``, None (full precision) otherwise."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if str(precision).startswith("bf16"):
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return None


def is_fsdp2_sharded(module: nn.Module) -> bool:
    """Whether ``module`` or one of its submodules was sharded with FSDP2 ``fully_shard``."""
    from torch.distributed.fsdp import FSDPModule

    return any(isinstance(m, FSDPModule) for m in module.modules())


def same_on_all_ranks(value: int) -> int:
    """Rank 0's ``value`` on every rank (a broadcast when a process group is up; else ``value``).
    For random choices that decide how many forward passes a step makes: sharded units gather
    their weights per pass, so every rank must make the same passes."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    nccl = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    chosen = torch.tensor([value], device=device)
    dist.broadcast(chosen, src=0)
    return int(chosen.item())


def _wrap_blocks(
    module: nn.Module,
    recurse: bool,
    nonwrapped_numel: int = 0,
    *,
    block_classes: tuple[type[nn.Module], ...],
) -> bool:
    """FSDP1 ``_auto_wrap`` callable: descend everywhere, make a unit of every block."""
    if recurse:
        return True
    return isinstance(module, block_classes)


def block_wrap_policy(block_classes: Iterable[type[nn.Module]]) -> Callable[..., bool]:
    """An FSDP auto-wrap policy ``(module, recurse, nonwrapped_numel) -> bool`` making one FSDP
    unit per instance of ``block_classes`` (for FSDP1 / Lightning's ``FSDPStrategy``)."""
    classes = tuple(block_classes)
    if not classes or not all(isinstance(c, type) and issubclass(c, nn.Module) for c in classes):
        raise TypeError(f"block_wrap_policy needs nn.Module subclasses, got {classes!r}")
    return functools.partial(_wrap_blocks, block_classes=classes)


def video_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int = 0) -> bool:
    """Camera video model: a unit per CogVideoX block (frozen base and trainable copies) and per
    T5 block; the VAE stays in the root unit (the same plan as
    ``training.modules.video_model.fsdp_wrap_policy``)."""
    return _wrap_blocks(module, recurse, nonwrapped_numel, block_classes=VIDEO_BLOCKS)


def lalrm_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int = 0) -> bool:
    """LaLRM: a unit per transformer block (``models.lalrm.model.Block``)."""
    return _wrap_blocks(module, recurse, nonwrapped_numel, block_classes=LALRM_BLOCKS)


def frame_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int = 0) -> bool:
    """Frame model (stage II and the three DMD networks of stage III): a unit per ``FrameBlock``."""
    return _wrap_blocks(module, recurse, nonwrapped_numel, block_classes=FRAME_BLOCKS)


def block_units(model: nn.Module, block_classes: Iterable[type[nn.Module]]) -> list[nn.Module]:
    """The modules of ``model`` that ``block_wrap_policy(block_classes)`` makes units of."""
    classes = tuple(block_classes)
    return [m for m in model.modules() if isinstance(m, classes)]


def fully_shard_blocks(
    model: nn.Module,
    block_classes: Iterable[type[nn.Module]],
    mesh: Any = None,
    mp_policy: Any = None,
) -> nn.Module:
    """FSDP2: ``fully_shard`` every block of ``model``, then the model (root unit). ``mesh``: a
    1-D ``DeviceMesh`` (None: all ranks on the default device type); ``mp_policy``: an FSDP2
    ``MixedPrecisionPolicy`` or None (full precision). Returns ``model`` (sharded in place)."""
    from torch.distributed.fsdp import fully_shard

    kwargs = {"mesh": mesh}
    if mp_policy is not None:
        kwargs["mp_policy"] = mp_policy
    for block in block_units(model, block_classes):
        fully_shard(block, **kwargs)
    fully_shard(model, **kwargs)
    return model


def full_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The consolidated (unsharded) fp32-as-stored state dict of ``model`` on rank 0's CPU.

    Works for FSDP1-wrapped, FSDP2-sharded and plain modules. A collective when ``model`` is
    sharded: every rank must call it; ranks other than 0 get ``{}``."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if not (dist.is_available() and dist.is_initialized()):
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    # offloading tensors that already live on the CPU crashes FSDP1's gather: gather in place there
    on_accelerator = any(p.device.type != "cpu" for p in model.parameters())
    options = StateDictOptions(full_state_dict=True, cpu_offload=on_accelerator)
    state = get_model_state_dict(model, options=options)
    if dist.get_rank() != 0:
        return {}
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def consolidate_for_export(pl_module: Any, prefix: str) -> dict[str, Tensor] | None:
    """Under Lightning's ``FSDPStrategy``, or when the module sharded itself with FSDP2
    (``BlockShardStrategy``): gather the full state dict (a collective — call on
    every rank, e.g. in ``on_train_end``) and return, on rank 0, the entries under ``prefix``
    (e.g. ``"model."``) with the prefix removed, as fp32 CPU tensors. ``None`` on other ranks and
    for unsharded strategies (the module's own weights are complete there)."""
    trainer = pl_module.trainer
    if isinstance(trainer.strategy, FSDPStrategy):
        full = trainer.strategy.lightning_module_state_dict()  # collective, full on rank 0
    elif is_fsdp2_sharded(pl_module):  # BlockShardStrategy: the module sharded itself
        full = full_state_dict(pl_module)  # collective, full on rank 0
    else:
        return None
    if not trainer.is_global_zero:
        return None
    state = {
        k[len(prefix) :]: v.detach().float().cpu().clone()
        for k, v in full.items()
        if k.startswith(prefix)
    }
    if not state:
        raise RuntimeError(f"consolidated state dict has no entries under {prefix!r}")
    return state


def unsharded_copy(
    module: nn.Module, state: dict[str, Tensor] | None, build: Callable[[], nn.Module]
) -> nn.Module:
    """``module`` itself when ``state`` is None, else a fresh CPU network from ``build()`` holding
    ``state`` (strict load) — what ``export_pretrained`` writes after a sharded run."""
    if state is None:
        return module
    copy = build()
    copy.load_state_dict(state, strict=True)
    return copy
