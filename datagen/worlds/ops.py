"""Small tensor helpers that avoid slow torch CPU paths on ``[N]``/``[N, 3]`` arrays.

On CPU, advanced indexing, ``nonzero`` and reductions over a last axis of size 3 are several
times slower than ``index_select``, numpy's ``flatnonzero`` and explicit component arithmetic;
the shading code calls these instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor


def where_idx(mask: Tensor) -> Tensor:
    """int64 indices ``[k]`` of the true entries of a 1-D bool ``mask``."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return torch.nonzero(mask)[:, 0]


def take(x: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx`` of ``x`` (``x[idx]`` via ``index_select``)."""
    return x.index_select(0, idx)


def put(out: Tensor, idx: Tensor, value: Tensor) -> Tensor:
    """``out[idx] = value`` in place (``index_copy_``); returns ``out``."""
    return out.index_copy_(0, idx, value)


def dot3(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot product of ``[N, 3]`` arrays -> ``[N]``."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def normalize3(v: Tensor) -> Tensor:
    """Unit rows of ``v`` ``[N, 3]`` (zero rows stay finite)."""
    return v * torch.rsqrt(dot3(v, v).clamp_min(1e-20))[:, None]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (None: leave the setting), then restore it.

    Shading works on ~10^5-element arrays where extra OpenMP threads gain little and, on a busy
    machine, spin-wait for cores that other processes hold (measured 5× slower with 2 threads on
    2 shared cores), so the renderer defaults to one.
    """
    old = torch.get_num_threads()
    change = n is not None and n != old
    if change:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)
