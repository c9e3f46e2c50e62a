"""Camera-LoRA (Wonderland §3.2): low-rank adapters added to frozen ``nn.Linear`` layers.

The adapters live in their own module (``LoRAAdapters``) and reach the frozen linears through
forward hooks, so the base model keeps its structure and its ``state_dict`` keys (it still saves
and loads as a plain diffusers model) while ``out = W x + b + (alpha / r) · B A x``.
``B`` starts at zero, so an attached adapter changes nothing until it is trained.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class LoRA(nn.Module):
    """``x [..., in] -> (alpha / rank) · B(A(x)) [..., out]``; ``A`` Kaiming-uniform, ``B = 0``."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float | None = None):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.rank = rank
        self.scale = (rank if alpha is None else alpha) / rank
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.up(self.down(x.to(self.down.weight.dtype))) * self.scale


def _key(name: str) -> str:
    return name.replace(".", "__")


class LoRAAdapters(nn.Module):
    """Adapters for named ``nn.Linear`` submodules of ``root``, applied through forward hooks.

    ``targets``: names relative to ``root`` (e.g. ``"transformer_blocks.0.attn1.to_q"``).
    Adapter parameters are keyed ``adapters.<name with '.' -> '__'>.{down,up}.weight``.
    """

    def __init__(self, root: nn.Module, targets: list[str], rank: int, alpha: float | None = None):
        super().__init__()
        modules = dict(root.named_modules())
        self.adapters = nn.ModuleDict()
        self._handles = []
        for name in targets:
            linear = modules.get(name)
            if not isinstance(linear, nn.Linear):
                raise ValueError(f"LoRA target {name!r} is not an nn.Linear of the base model")
            if getattr(linear, "_lora_attached", False):
                raise ValueError(f"{name!r} already carries a LoRA adapter")
            lora = LoRA(linear.in_features, linear.out_features, rank, alpha)
            self.adapters[_key(name)] = lora
            linear._lora_attached = True
            self._handles.append(linear.register_forward_hook(_make_hook(lora)))
        self.targets = list(targets)

    def detach_hooks(self) -> None:
        """Remove the hooks (the base model behaves as without adapters again)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _make_hook(lora: LoRA):
    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
        return output + lora(inputs[0]).to(output.dtype)

    return hook


def block_lora_targets(num_blocks: int, include_ff: bool = False) -> list[str]:
    """Names of the attention q/k/v/out linears (and optionally the feed-forward linears) of
    ``num_blocks`` CogVideoX blocks, relative to the transformer."""
    names = ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0"]
    if include_ff:
        names += ["ff.net.0.proj", "ff.net.2"]
    return [f"transformer_blocks.{i}.{n}" for i in range(num_blocks) for n in names]


@torch.no_grad()
def lora_delta_norm(adapters: LoRAAdapters) -> float:
    """Frobenius norm of all ``B A`` products (0 at initialisation)."""
    total = 0.0
    for lora in adapters.adapters.values():
        total += float((lora.up.weight @ lora.down.weight).pow(2).sum())
    return math.sqrt(total)
