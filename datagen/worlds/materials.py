"""Procedural materials: a named pattern kind plus colours and parameters, evaluated per hit.

A world holds a list of ``Material``; the renderer packs them into a ``[M, 16]`` parameter table
and evaluates each kind once per frame over all of its hits (see ``patterns`` for the kinds and
what ``p0..p4`` mean for each). Colours are sRGB in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from datagen.worlds.ops import take
from datagen.worlds.patterns import PARAM_COLUMNS, PATTERNS, Surface

KINDS = tuple(PATTERNS)
NUM_PARAMS = 16


@dataclass(frozen=True)
class Material:
    """One material. ``detail`` is the caption of its finest (level-4) structure."""

    name: str
    kind: str
    a: tuple[float, float, float]
    b: tuple[float, float, float] = (0.0, 0.0, 0.0)
    c: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    p: tuple[float, ...] = field(default_factory=tuple)
    seed: float = 0.0
    emission: float = 0.0
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PATTERNS:
            raise ValueError(f"material {self.name!r}: unknown kind {self.kind!r}")
        if len(self.p) > 5:
            raise ValueError(f"material {self.name!r}: at most 5 parameters p0..p4")

    def row(self) -> list[float]:
        """The 16 packed parameters: a, b, c, scale, p0..p4, seed."""
        p = list(self.p) + [0.0] * (5 - len(self.p))
        return [*self.a, *self.b, *self.c, self.scale, *p, self.seed]

    def to_dict(self) -> dict:
        return asdict(self)


class MaterialTable:
    """Materials packed as tensors: ``kinds`` ``[M]`` int64, ``params`` ``[M, 16]``,
    ``emission`` ``[M]``."""

    def __init__(self, materials: list[Material], device: torch.device | str = "cpu") -> None:
        self.materials = list(materials)
        self.kinds = torch.tensor([KINDS.index(m.kind) for m in materials], device=device)
        self.params = torch.tensor([m.row() for m in materials], dtype=torch.float32, device=device)
        self.emission = torch.tensor(
            [m.emission for m in materials], dtype=torch.float32, device=device
        )
        self.columns = {
            name: self.params[:, a:b].squeeze(1).contiguous()
            if b - a == 1
            else self.params[:, a:b].contiguous()
            for name, (a, b) in PARAM_COLUMNS.items()
        }

    def kind_of(self, material: Tensor) -> Tensor:
        """Kind index ``[n]`` of material ids ``[n]``."""
        return self.kinds.index_select(0, material)

    def albedo(
        self,
        material: Tensor,
        uv: Tensor,
        local: Tensor,
        pos: Tensor,
        normal: Tensor,
        footprint: Tensor,
        counts: list[int] | None = None,
    ) -> Tensor:
        """sRGB albedo ``[n, 3]`` for hits with material ids ``material`` ``[n]``.

        ``counts[k]`` (optional) says the hits are already sorted by kind with ``counts[k]`` hits
        of kind ``k``: each kind then works on contiguous views, with no gathers or scatters.
        """
        if counts is None:
            kind = self.kind_of(material)
            order = torch.argsort(kind, stable=True)
            fields = [take(x, order) for x in (material, uv, local, pos, normal, footprint)]
            counts = torch.bincount(kind, minlength=len(KINDS)).tolist()
            sorted_out = self.albedo(*fields, counts=counts)
            return torch.empty_like(sorted_out).index_copy_(0, order, sorted_out)
        out = torch.empty(material.shape[0], 3, device=uv.device)
        fields = {"uv": uv, "local": local, "pos": pos, "normal": normal, "fp": footprint}
        start = 0
        for k, count in enumerate(counts):
            if not count:
                continue
            rows = slice(start, start + count)
            surf = Surface(rows, material[rows], self.columns, fields)
            out[rows] = PATTERNS[KINDS[k]](surf).clamp_(0.0, 1.0)
            start += count
        return out
