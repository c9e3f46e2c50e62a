"""Causal conditions: the frame model's cacheable attention layout (``condition_attention="causal"``).

In the paper's layout every token attends to every other token and every token is modulated by
the timestep, so the reference and anchor tokens must be recomputed at every denoising step. In
the causal layout the conditions are clean inputs — modulated with ``t = 0`` — and attention is
block-causal over the views::

    reference  → reference
    anchor     → anchor, reference
    target     → target, anchor, reference

Then a view's keys/values in every layer depend only on the views it attends to, so the
reference's are computed once per scene, the anchor's once per frame, and each denoising step
runs the target's tokens only (WorldFM §3 names "KV-cache management" as its next speed-up). The
model is trained in the same layout (the segment code below is the training forward too), so the
cached and uncached outputs agree to float rounding.

Tokens of one view are its ``hp × wp`` grid in row-major order; keys are concatenated as
``[own | attended views]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel

from .prope import prope_output, prope_qkv

KV = tuple[Tensor, Tensor]
_SHARDED_UNITS = (FSDPModule, FullyShardedDataParallel)


@dataclass
class ViewGeometry:
    """PRoPE inputs of one view's ``n`` tokens: ``P``, ``P_inv`` ``[B, n, 4, 4]`` and the RoPE
    coefficients (``grid_rope``); all None when the model does not use PRoPE."""

    P: Tensor | None = None
    P_inv: Tensor | None = None
    rope: tuple[Tensor, ...] | None = None
    rotate_values: bool = True


@dataclass
class ConditionCache:
    """Per-layer keys/values ``(k', v')``, each ``[B, heads, n, d]``, of the reference (per scene)
    and of the anchor (per frame; None until ``FrameDiT.anchor_kv`` fills it)."""

    reference: list[KV]
    anchor: list[KV] | None = None


def _heads(t: Tensor, heads: int, head_dim: int) -> Tensor:
    B, n, _ = t.shape
    return t.view(B, n, heads, head_dim).transpose(1, 2)


def _require_unsharded(block: nn.Module) -> None:
    """``view_block`` calls a block's layers one by one, never its forward, and FSDP units gather
    their weights only around their forward: refuse per-block sharded blocks clearly."""
    if isinstance(block, _SHARDED_UNITS):
        raise RuntimeError(
            "the causal condition layout runs its blocks piecewise (view_block), which per-block "
            "FSDP units do not gather weights for: train condition_attention='causal' replicated "
            "(strategy ddp), or use condition_attention='full' with the sharded configs"
        )


def view_block(
    block: nn.Module,
    x: Tensor,
    t_mod: Tensor,
    geo: ViewGeometry,
    attended: list[KV],
    mask: Tensor | None = None,
) -> tuple[Tensor, KV]:
    """One ``FrameBlock`` on one view's tokens ``x [B, n, D]`` attending to itself and to the
    ``attended`` views' cached ``(k', v')``; ``mask [B, 1, 1, n + Σ n_attended]`` bool (True =
    visible) or None. Returns (the view's output ``[B, n, D]``, its own ``(k', v')``)."""
    _require_unsharded(block)
    attn = block.attn1
    B, n, _ = x.shape
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = block.modulation(t_mod)
    h = block.norm1(x) * (1 + scale_msa) + shift_msa
    q, k, v = (_heads(f(h), attn.heads, attn.head_dim) for f in (attn.to_q, attn.to_k, attn.to_v))
    if geo.P is not None:
        q, k, v = prope_qkv(q, k, v, geo.P, geo.P_inv, geo.rope, geo.rotate_values)
    keys = [k, *(kv[0].expand(B, -1, -1, -1) for kv in attended)]
    values = [v, *(kv[1].expand(B, -1, -1, -1) for kv in attended)]
    o = F.scaled_dot_product_attention(
        q, torch.cat(keys, dim=2), torch.cat(values, dim=2), attn_mask=mask
    )
    if geo.P is not None:
        o = prope_output(o, geo.P, geo.rope, geo.rotate_values)
    o = o.transpose(1, 2).reshape(B, n, attn.heads * attn.head_dim)
    x = x + gate_msa * attn.to_out[1](attn.to_out[0](o))
    h = block.norm2(x) * (1 + scale_mlp) + shift_mlp
    return x + gate_mlp * block.ff(h), (k, v)
