"""The arguments of one rasterisation, shared by ``render_gaussians`` and its two backends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from torch import Tensor

MODES = ("3dgs", "2dgs")


def check_mode(mode: str) -> str:
    """``mode`` itself; ValueError unless it is one of ``MODES``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class RasterArgs:
    """``B`` scenes of ``N`` Gaussians, each seen by ``C`` cameras (one flat batch dim ``B``).

    means/scales ``[B, N, 3]``, quats ``[B, N, 4]`` (wxyz), opacities ``[B, N]``, colors
    ``[B, C, N, D]`` (gsplat also takes ``[B, N, D]``, shared by all views), viewmats
    ``[B, C, 4, 4]`` (world-to-camera), Ks ``[B, C, 3, 3]``, backgrounds ``[B, C, D]`` or None.
    """

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor
    viewmats: Tensor
    Ks: Tensor
    width: int
    height: int
    near: float = 0.01
    far: float = 1e10
    backgrounds: Tensor | None = None
    mode: str = "3dgs"
    eps2d: float = 0.3

    def __post_init__(self) -> None:
        check_mode(self.mode)

    def map_tensors(self, fn: Callable[[Tensor], Tensor]) -> RasterArgs:
        """A copy with ``fn`` applied to every tensor (None stays None)."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                changes[f.name] = fn(value)
        return replace(self, **changes)
