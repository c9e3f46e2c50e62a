"""Where in-process model work runs: device names and CPU thread limits for asset bodies."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from training.previews import torch_threads


def resolve_device(name: str | None) -> str:
    """``"auto"`` / ``""`` / None → ``"cuda"`` when available, else ``"cpu"``; others unchanged."""
    if name and name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def cpu_threads(device: str, threads: int) -> Iterator[None]:
    """``threads`` torch threads for a block running on the CPU (one by default in the assets:
    several threads per process oversubscribe a small shared machine); no-op on a GPU."""
    if torch.device(resolve_device(device)).type == "cpu":
        with torch_threads(threads):
            yield
    else:
        yield
