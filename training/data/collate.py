"""Batch collation for the per-sample dicts of ``training.data``."""

from __future__ import annotations

import torch


def collate(samples: list[dict]) -> dict:
    """Stack a list of sample dicts into one batch dict.

    Tensors are stacked along a new leading batch dim (shapes must match); lists of Python
    ``bool`` / ``int`` / ``float`` become 1-D tensors (bool / int64 / float32); everything else
    (strings, None, mixed) stays a list in sample order. All samples must have the same keys.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    keys = list(samples[0])
    for i, sample in enumerate(samples[1:], start=1):
        if set(sample) != set(keys):
            raise ValueError(f"sample {i} has keys {sorted(sample)}, expected {sorted(keys)}")
    batch = {}
    for key in keys:
        values = [s[key] for s in samples]
        if all(isinstance(v, torch.Tensor) for v in values):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) != 1:
                raise ValueError(f"cannot stack {key!r}: shapes {sorted(shapes)}")
            batch[key] = torch.stack(values)
        elif all(isinstance(v, bool) for v in values):
            batch[key] = torch.tensor(values, dtype=torch.bool)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        elif all(isinstance(v, float) for v in values):
            batch[key] = torch.tensor(values, dtype=torch.float32)
        else:
            batch[key] = values
    return batch
