"""Outdoor family: hilly meadow with a house, trees, rocks and distant hills under the sun."""

from __future__ import annotations

import numpy as np

from datagen.worlds import meshes as M
from datagen.worlds.builder import WorldBuilder
from datagen.worlds.families import palette as P
from datagen.worlds.families.props import add_tree, add_window, np_fbm, wall_frame
from datagen.worlds.materials import Material
from datagen.worlds.spec import WorldSpec, resolve_params
from datagen.worlds.world import Lighting, Navigation, World

DEFAULTS = {"size": 70.0, "grid": 72, "trees": None, "rocks": None, "hilliness": 1.0}

MEADOW = Material(
    "meadow",
    "terrain",
    (0.3, 0.42, 0.17),
    (0.45, 0.36, 0.25),
    (0.5, 0.48, 0.44),
    scale=7.0,
    detail="small white flowers among blades of grass",
)
GRANITE = Material(
    "granite",
    "stone",
    (0.56, 0.55, 0.52),
    (0.33, 0.32, 0.3),
    (0.66, 0.64, 0.3),
    scale=0.3,
    p=(0.003, 0.25),
    detail="yellow lichen on grey granite",
)
HILLS = Material(
    "hills",
    "noise",
    (0.3, 0.4, 0.28),
    (0.22, 0.3, 0.22),
    (0.4, 0.42, 0.4),
    scale=9.0,
    p=(1.2, 0.0),
    detail="forested slopes",
)
ROOFS = {
    "red": (0.56, 0.22, 0.14),
    "slate grey": (0.3, 0.31, 0.34),
    "brown": (0.42, 0.28, 0.19),
}


class _Terrain:
    """Height function of the meadow, flattened around building sites."""

    def __init__(self, rng, size: float, hilliness: float) -> None:
        self.size, self.hilliness = size, hilliness
        self.offset = rng.uniform(0, 50, 2)
        self.sites: list[tuple[np.ndarray, float, float]] = []

    def raw(self, xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(xy)
        h = self.hilliness * 5.0 * (np_fbm(xy / 22.0 + self.offset, 4) - 0.5)
        r = np.linalg.norm(xy, axis=1)
        t = np.clip((r - 0.32 * self.size) / (0.18 * self.size), 0, 1)
        return h + 4.0 * t * t * (3 - 2 * t)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(xy)
        h = self.raw(xy)
        for c, radius, z in self.sites:
            d = np.linalg.norm(xy - c, axis=1)
            t = np.clip((d - radius) / 5.0, 0, 1)
            h = z + (h - z) * t * t * (3 - 2 * t)
        return h


def _house(b: WorldBuilder, parent, terrain: _Terrain, center, yaw: float, rng) -> dict:
    wall_name, _ = P.pick(rng, P.BRICKS)
    roof_name, roof_rgb = P.pick(rng, ROOFS)
    paint_name = ["blue", "green", "red", "white", "teal"][int(rng.integers(5))]
    w, d, hgt = rng.uniform(6.0, 8.5), rng.uniform(5.0, 6.5), rng.uniform(2.7, 3.2)
    adj = "stone" if wall_name == "grey stone" else wall_name
    house = b.node(parent, "house", f"a {adj} house with a {roof_name} tiled roof", salience=5.0)
    z0 = float(terrain(center[None])[0])
    T = M.pose([center[0], center[1], z0], yaw)
    brick = P.bricks(wall_name, seed=float(rng.integers(100)))
    walls = b.node(house, "walls", f"a wall of {wall_name}s", salience=2.0)
    b.add(walls, M.box((w, d, hgt + 0.5), (0, 0, (hgt - 0.5) / 2)).transformed(T), brick)
    one = b.node(walls, "brick", f"a weathered {wall_name}", geometry=False)
    b.detail(one, brick)
    roof = b.node(house, "roof", f"a roof of {roof_name} tiles", salience=1.0)
    tile = Material(
        f"tiles_{roof_name.replace(' ', '_')}",
        "tiles",
        roof_rgb,
        (0.15, 0.12, 0.1),
        (0.3, 0.38, 0.16),
        scale=0.22,
        p=(0.3, 1.0, 0.7),
        detail=f"moss growing between {roof_name} roof tiles",
    )
    rise = rng.uniform(1.6, 2.4)
    b.add(roof, M.prism_roof(w + 0.6, d + 0.6, rise).transformed(T @ M.pose([0, 0, hgt])), tile)
    b.detail(roof, tile, via=f"overlapping {roof_name} roof tiles")
    chimney = b.node(house, "chimney", f"a {wall_name} chimney", salience=0.3)
    b.add(
        chimney,
        M.box((0.55, 0.55, rise + 1.0), (w * 0.25, d * 0.2, hgt + (rise + 1.0) / 2)).transformed(T),
        brick,
    )
    b.detail(chimney, brick, via="the top of a chimney")
    paint = P.painted_wood(paint_name)
    door_paint = P.painted_wood(["green", "red", "blue", "yellow"][int(rng.integers(4))])
    door = b.node(house, "door", f"a wooden front door painted {door_paint.name[6:]}", salience=1.5)
    front = T @ wall_frame([0, -d / 2, 0], [0, -1, 0])
    b.add(door, M.box((1.0, 0.08, 2.1), (0.0, 0.04, 1.05)).transformed(front), door_paint)
    b.add(door, M.sphere(0.04, 5, 8).transformed(front @ M.pose([0.38, 0.12, 1.0])), P.METAL)
    panel = b.node(door, "panel", "a door panel with a dark metal knob", geometry=False)
    b.detail(panel, door_paint)
    pane = Material(
        "window_glass",
        "glass",
        (0.55, 0.62, 0.7),
        (0.25, 0.32, 0.42),
        (0.2, 0.26, 0.2),
        scale=1.2,
        detail="reflections in old glass",
    )
    first = True
    for side, (origin, normal, span) in enumerate(
        [
            ([0, -d / 2, 0], [0, -1, 0], w),
            ([0, d / 2, 0], [0, 1, 0], w),
            ([w / 2, 0, 0], [1, 0, 0], d),
            ([-w / 2, 0, 0], [-1, 0, 0], d),
        ]
    ):
        xs = [-span * 0.3, span * 0.3] if side < 2 else [0.0]
        for x in xs:
            Tw = T @ wall_frame(origin, normal) @ M.pose([x, 0, 0.95])
            sal = 3.0 if first else 1.0 + 0.5 * rng.random()
            add_window(b, house, Tw, 1.0, 1.25, paint, pane, salience=sal)
            first = False
    return {"center": np.array([center[0], center[1], z0]), "yaw": yaw, "adj": adj}


def _rock(b: WorldBuilder, parent, terrain: _Terrain, xy, rng) -> None:
    r = rng.uniform(0.35, 1.3)
    axes = np.array([rng.uniform(0.8, 1.3), rng.uniform(0.7, 1.1), rng.uniform(0.45, 0.75)])
    seed = rng.uniform(0, 20)

    def bump(dirs):
        ell = 1.0 / np.linalg.norm(dirs / axes, axis=1)
        return ell * (0.75 + 0.5 * np_fbm(dirs * 1.6 + seed, 5))

    size = "large" if r > 0.9 else "small"
    rock = b.node(parent, "rock", f"a {size} grey boulder", salience=0.6 + r)
    z = float(terrain(np.asarray(xy)[None])[0]) + r * axes[2] * 0.25
    b.add(rock, M.sphere(r, 12, 20, bump).placed([xy[0], xy[1], z], rng.uniform(0, 360)), GRANITE)
    face = b.node(rock, "surface", "the rough surface of a granite boulder", geometry=False)
    crack = b.node(face, "crack", "a dark crack across weathered granite", geometry=False)
    b.detail(crack, GRANITE)


def _hills(b: WorldBuilder, parent, radius: float, rng) -> None:
    node = b.node(parent, "hills", "forested hills on the horizon", salience=0.1)
    ang = np.linspace(0, 2 * np.pi, 97)
    prof = 9 + 22 * np_fbm(np.stack([np.cos(ang), np.sin(ang)], 1) * 2.2 + rng.uniform(0, 9), 4)
    prof[-1] = prof[0]
    ring = np.stack([np.cos(ang), np.sin(ang)], 1) * radius
    pts = np.stack(
        [
            np.concatenate([ring, np.full((97, 1), -3.0)], 1),
            np.concatenate([ring, prof[:, None]], 1),
        ],
        1,
    )
    uv = np.stack(np.broadcast_arrays(ang[:, None] * radius, pts[..., 2]), -1)
    part = M.grid_surface(pts, uv)
    inward = np.einsum("ij,ij->i", part.normals, -part.vertices) < 0
    part.normals[inward] *= -1
    part = M.orient(part)
    b.add(node, part, HILLS)
    slope = b.node(node, "slope", "a distant wooded slope", geometry=False)
    b.detail(slope, HILLS)


def build_outdoor(spec: WorldSpec) -> World:
    """Generate an outdoor world from ``spec`` (params: ``DEFAULTS``)."""
    prm = resolve_params(spec, DEFAULTS)
    rng = np.random.default_rng(spec.seed)
    size = float(prm["size"])
    terrain = _Terrain(rng, size, float(prm["hilliness"]))
    b = WorldBuilder(spec)
    center = np.array([rng.uniform(-6, 6), rng.uniform(2, 10)])
    terrain.sites.append((center, 5.5, float(terrain.raw(center[None])[0])))
    house = _house(b, b.root, terrain, center, float(rng.uniform(-40, 40)), rng)

    half = size / 2
    xs = np.linspace(-half, half, int(prm["grid"]))
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    Z = terrain(np.stack([X.ravel(), Y.ravel()], 1)).reshape(X.shape)
    ground = b.node(b.root, "meadow", "a grassy meadow", salience=0.5)
    b.add(ground, M.heightfield(xs, xs, Z), MEADOW)
    grass = b.node(ground, "grass", "a patch of grass and bare earth", geometry=False)
    b.detail(grass, MEADOW, via="grass blades")
    _hills(b, b.root, size * 1.4, rng)

    taken = [(center, 7.5)]

    def free_spot(clear: float):
        for _ in range(200):
            xy = rng.uniform(-0.4 * size, 0.4 * size, 2)
            if all(np.linalg.norm(xy - c) > r + clear for c, r in taken):
                return xy
        return None

    n_trees = int(prm["trees"]) if prm["trees"] is not None else int(rng.integers(5, 10))
    for _ in range(n_trees):
        xy = free_spot(2.5)
        if xy is None:
            break
        taken.append((xy, 2.0))
        z = float(terrain(xy[None])[0])
        add_tree(b, b.root, [xy[0], xy[1], z], rng, rng.uniform(5.0, 8.0))
    n_rocks = int(prm["rocks"]) if prm["rocks"] is not None else int(rng.integers(6, 13))
    for _ in range(n_rocks):
        xy = free_spot(1.5)
        if xy is None:
            break
        taken.append((xy, 1.2))
        _rock(b, b.root, terrain, xy, rng)

    sun_az, sun_el = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(25, 60))
    sun = (np.cos(sun_el) * np.cos(sun_az), np.cos(sun_el) * np.sin(sun_az), np.sin(sun_el))
    b.root.caption = f"a {house['adj']} house in a meadow with {n_trees} trees and scattered rocks"
    lighting = Lighting(sun_dir=tuple(float(x) for x in sun), sun_color=(2.6, 2.45, 2.2), fog=0.004)
    yaw = np.deg2rad(house["yaw"])
    front = np.array([np.sin(yaw), -np.cos(yaw)])
    side = np.array([np.cos(yaw), np.sin(yaw)])
    eye_xy = house["center"][:2] + front * rng.uniform(11, 15) + side * rng.uniform(-5, 5)
    eye_z = float(terrain(eye_xy[None])[0]) + 1.7
    nav = Navigation(
        region_min=(-0.36 * size, -0.36 * size),
        region_max=(0.36 * size, 0.36 * size),
        eye_height=(1.5, 2.2),
        center=tuple(float(x) for x in house["center"]),
        clearance=0.6,
        min_view_depth=2.5,
        preview_eye=(float(eye_xy[0]), float(eye_xy[1]), eye_z),
        preview_target=tuple(float(x) for x in house["center"] + [0, 0, 1.8]),
        ground_z=None,
        ground_instance=ground.instance,
    )
    return b.build(lighting, nav)
