"""Scene graph: named nodes with instance ids, materials and a caption for their zoom level.

Level 0 is the whole world, level 1 an object, level 2 a part, level 3 a sub-part and level 4
surface detail that exists only in the material (a crack, a leaf vein, printed letters). Detail
nodes share the instance id of the geometry that carries them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NUM_LEVELS = 5


@dataclass
class SceneNode:
    """One node.

    name: short identifier ("house", "window_2"); caption: what the view shows when this node
    fills it ("a wooden window frame"); level: zoom level 0..4; instance: instance id of its
    geometry (0 = none of its own); material: material name or None; salience: which child the
    canonical zoom path follows (largest wins); bounds: world AABB ``[2, 3]`` (min, max) or None.
    """

    name: str
    caption: str
    level: int
    instance: int = 0
    material: str | None = None
    salience: float = 1.0
    bounds: np.ndarray | None = None
    children: list[SceneNode] = field(default_factory=list)

    def add(self, child: SceneNode) -> SceneNode:
        if child.level <= self.level:
            raise ValueError(f"child {child.name!r} level {child.level} <= parent {self.level}")
        self.children.append(child)
        return child

    def walk(self) -> Iterator[SceneNode]:
        """Depth-first iteration, self first."""
        yield self
        for c in self.children:
            yield from c.walk()

    @property
    def center(self) -> np.ndarray | None:
        return None if self.bounds is None else self.bounds.mean(0)

    def extend_bounds(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Grow ``bounds`` (and nothing else) to include the box ``lo``..``hi``."""
        box = np.stack([lo, hi]).astype(np.float64)
        if self.bounds is None:
            self.bounds = box
        else:
            self.bounds = np.stack([np.minimum(self.bounds[0], lo), np.maximum(self.bounds[1], hi)])

    def zoom_path(self) -> list[SceneNode]:
        """The canonical zoom path: from this node, repeatedly into the most salient child."""
        path = [self]
        while path[-1].children:
            path.append(max(path[-1].children, key=lambda c: c.salience))
        return path

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "caption": self.caption,
            "level": self.level,
            "instance": self.instance,
            "material": self.material,
            "salience": round(float(self.salience), 6),
            "bounds": None if self.bounds is None else np.round(self.bounds, 6).tolist(),
            "children": [c.to_dict() for c in self.children],
        }
