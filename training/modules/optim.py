"""The optimiser most modules share: AdamW with an optional linear learning-rate warm-up."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def adamw_with_warmup(params: Iterable, hp, **adamw_kwargs):
    """AdamW over ``params`` from ``hp.lr``, ``hp.betas``, ``hp.weight_decay`` (+ ``adamw_kwargs``,
    e.g. ``eps``); with ``hp.warmup_steps`` > 0, a per-step linear warm-up to ``hp.lr`` — in the
    form ``configure_optimizers`` returns."""
    opt = torch.optim.AdamW(
        params, lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay, **adamw_kwargs
    )
    if not hp.warmup_steps:
        return opt
    warm = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / hp.warmup_steps)
    )
    return {"optimizer": opt, "lr_scheduler": {"scheduler": warm, "interval": "step"}}
