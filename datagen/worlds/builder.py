"""``WorldBuilder``: what a family uses to add geometry, materials and scene-graph nodes."""

from __future__ import annotations

import numpy as np

from datagen.worlds.materials import Material
from datagen.worlds.meshes import MeshBuilder, Part
from datagen.worlds.scene_graph import SceneNode
from datagen.worlds.spec import WorldSpec
from datagen.worlds.world import Lighting, Navigation, World


class WorldBuilder:
    """Collects parts, materials and nodes; ``build`` returns the ``World``.

    Nodes that own geometry get a fresh instance id (1, 2, ...); texture-level nodes
    (``geometry=False``) share their parent's.
    """

    def __init__(self, spec: WorldSpec, root_caption: str = "") -> None:
        self.spec = spec
        self.mesh = MeshBuilder()
        self.materials: list[Material] = []
        self._material_ids: dict[str, int] = {}
        self.root = SceneNode("world", root_caption, 0)
        self._parent: dict[int, SceneNode] = {}
        self._next_instance = 1

    def material(self, m: Material) -> int:
        """Register ``m`` (by name; the first registration wins) and return its id."""
        if m.name not in self._material_ids:
            self._material_ids[m.name] = len(self.materials)
            self.materials.append(m)
        return self._material_ids[m.name]

    def node(
        self,
        parent: SceneNode,
        name: str,
        caption: str,
        *,
        level: int | None = None,
        salience: float = 1.0,
        geometry: bool = True,
        material: str | None = None,
    ) -> SceneNode:
        """A child of ``parent`` one level finer unless ``level`` is given."""
        instance = parent.instance
        if geometry:
            instance, self._next_instance = self._next_instance, self._next_instance + 1
        lvl = parent.level + 1 if level is None else level
        node = SceneNode(name, caption, lvl, instance, material, salience)
        parent.add(node)
        self._parent[id(node)] = parent
        return node

    def add(self, node: SceneNode, part: Part, material: Material) -> None:
        """Add ``part`` (already in world coordinates) as geometry of ``node``."""
        if node.instance == 0:
            raise ValueError(f"node {node.name!r} has no instance id for geometry")
        self.mesh.add(part, self.material(material), node.instance)
        if node.material is None:
            node.material = material.name
        lo, hi = part.vertices.min(0), part.vertices.max(0)
        cur: SceneNode | None = node
        while cur is not None:
            cur.extend_bounds(lo, hi)
            cur = self._parent.get(id(cur))

    def detail(
        self, node: SceneNode, material: Material, via: str | None = None, name: str = "detail"
    ) -> SceneNode:
        """A level-4 texture node under ``node`` captioned by ``material.detail``.

        When ``node`` is coarser than level 3 and ``via`` is given, a level-3 texture node captioned
        ``via`` goes in between, so the zoom path has a caption at every level.
        """
        if node.level >= 4:
            return node
        if node.level < 3 and via is not None:
            node = self.node(node, f"{name}_part", via, level=3, geometry=False)
        child = self.node(node, name, material.detail, level=4, geometry=False)
        child.material = material.name
        child.bounds = None if node.bounds is None else node.bounds.copy()
        return child

    def build(self, lighting: Lighting, nav: Navigation) -> World:
        arrays = self.mesh.build()
        v = arrays["vertices"].astype(np.float64)
        self.root.extend_bounds(v.min(0), v.max(0))
        _fill_detail_bounds(self.root)
        return World(self.spec, arrays, self.materials, self.root, lighting, nav)


def _fill_detail_bounds(node: SceneNode) -> None:
    for child in node.children:
        if child.bounds is None and node.bounds is not None:
            child.bounds = node.bounds.copy()
        _fill_detail_bounds(child)
