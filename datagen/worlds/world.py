"""The ``World``: one merged triangle mesh with per-triangle material and instance ids, its
materials, scene graph, lighting and navigation hints. Built by ``generate_world``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datagen.worlds.materials import Material
from datagen.worlds.scene_graph import SceneNode
from datagen.worlds.spec import WorldSpec


@dataclass
class Lighting:
    """Key light, ambient and sky (colours sRGB in [0, 1] except ``sun_color``: linear radiance).

    sun_dir: unit vector towards a directional key light. point: position of a point key light
    instead (indoor lamps), with ``sun_color`` its intensity at 1 m. ambient: hemispheric fill
    strength between ``ground`` and ``sky_zenith``. fog: extinction per metre (0 = none).
    """

    sun_dir: tuple[float, float, float] = (0.4, 0.3, 0.87)
    sun_color: tuple[float, float, float] = (3.0, 2.85, 2.6)
    sky_zenith: tuple[float, float, float] = (0.33, 0.52, 0.82)
    sky_horizon: tuple[float, float, float] = (0.78, 0.84, 0.9)
    ground: tuple[float, float, float] = (0.35, 0.33, 0.28)
    ambient: float = 0.35
    point: tuple[float, float, float] | None = None
    fog: float = 0.0
    shadows: bool = True
    clouds: bool = True


@dataclass
class Navigation:
    """Where cameras may go (used by ``datagen.trajectories``), all metres, world z up.

    region_min/region_max: xy box for camera centres. eye_height: (lo, hi) above the ground, which
    is ``ground_z`` or, when None, found by casting rays down. ring: (r_lo, r_hi) around ``center``
    for object-centred worlds (tabletop) or None. clearance: minimum distance from any surface.
    min_view_depth: minimum median forward depth. preview_eye/preview_target: a good still view.
    ground_instance: instance id of the walkable ground when heights come from ray casts.
    """

    region_min: tuple[float, float]
    region_max: tuple[float, float]
    eye_height: tuple[float, float]
    center: tuple[float, float, float]
    clearance: float
    min_view_depth: float
    preview_eye: tuple[float, float, float]
    preview_target: tuple[float, float, float]
    ground_z: float | None = 0.0
    ring: tuple[float, float] | None = None
    ground_instance: int | None = None


@dataclass(eq=False)
class World:
    """A generated world. Arrays (see ``meshes.MeshBuilder.build``): ``vertices``, ``normals``,
    ``local`` float32 ``[V, 3]``, ``uv`` ``[V, 2]``, ``triangles`` int32 ``[T, 3]``,
    ``tri_material``, ``tri_instance`` int32 ``[T]`` (instance 0 = sky / miss)."""

    spec: WorldSpec
    arrays: dict[str, np.ndarray]
    materials: list[Material]
    graph: SceneNode
    lighting: Lighting
    nav: Navigation
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["cache"] = {}  # the open3d scene and device tensors are rebuilt on demand
        return state

    @property
    def id(self) -> str:
        return self.spec.world_id

    @property
    def num_triangles(self) -> int:
        return int(self.arrays["triangles"].shape[0])

    def scene(self):
        """The open3d ``RaycastingScene`` of the mesh (built once, cached)."""
        if "scene" not in self.cache:
            import open3d as o3d

            scene = o3d.t.geometry.RaycastingScene()
            scene.add_triangles(
                o3d.core.Tensor(self.arrays["vertices"]),
                o3d.core.Tensor(self.arrays["triangles"].astype(np.uint32)),
            )
            self.cache["scene"] = scene
        return self.cache["scene"]

    def cast(self, rays: np.ndarray) -> dict[str, np.ndarray]:
        """First hits of rays ``[..., 6]`` (origin, direction; hit distances are in units of the
        direction's length): ``t_hit`` (inf = miss), ``primitive_ids``, ``primitive_uvs``
        (barycentric weights of vertices 1 and 2), ``primitive_normals``, as numpy arrays."""
        import open3d as o3d

        hits = self.scene().cast_rays(o3d.core.Tensor(np.ascontiguousarray(rays, np.float32)))
        return {k: v.numpy() for k, v in hits.items()}

    def occluded(self, rays: np.ndarray, tfar: float = float("inf")) -> np.ndarray:
        """Bool ``[...]``: something lies along each ray ``[..., 6]`` before ``tfar``."""
        import open3d as o3d

        rays_t = o3d.core.Tensor(np.ascontiguousarray(rays, np.float32))
        return self.scene().test_occlusions(rays_t, tnear=0.0, tfar=tfar).numpy()

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Unsigned distance ``[N]`` from ``points`` ``[N, 3]`` to the nearest surface."""
        import open3d as o3d

        q = o3d.core.Tensor(np.ascontiguousarray(np.reshape(points, (-1, 3)), np.float32))
        return self.scene().compute_distance(q).numpy().astype(np.float64)

    def captions(self) -> list[str]:
        """One caption per zoom level 0..4 (see ``captions.level_captions``)."""
        from datagen.worlds.captions import level_captions

        return level_captions(self.graph)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: spec, captions, scene graph, counts."""
        return {
            "world_id": self.id,
            "spec": self.spec.to_dict(),
            "captions": self.captions(),
            "num_triangles": self.num_triangles,
            "num_instances": int(self.arrays["tri_instance"].max()),
            "materials": [m.name for m in self.materials],
            "graph": self.graph.to_dict(),
        }
