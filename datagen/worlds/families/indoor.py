"""Indoor family: a furnished living room lit by a pendant lamp and bright windows."""

from __future__ import annotations

import numpy as np

from datagen.worlds import meshes as M
from datagen.worlds.builder import WorldBuilder
from datagen.worlds.families import palette as P
from datagen.worlds.families.props import (
    add_book_stack,
    add_bookshelf,
    add_chair,
    add_mug,
    add_plant,
    add_table,
    add_window,
)
from datagen.worlds.families.room import WINDOW_VIEW, add_room
from datagen.worlds.materials import Material
from datagen.worlds.scene_graph import SceneNode
from datagen.worlds.spec import WorldSpec, resolve_params
from datagen.worlds.world import Lighting, Navigation, World

DEFAULTS = {"width": None, "depth": None, "height": None, "windows": None}

LAMPSHADE = Material(
    "lampshade",
    "noise",
    (0.95, 0.88, 0.72),
    (0.9, 0.8, 0.62),
    (0.8, 0.7, 0.5),
    scale=0.05,
    p=(0.6, 0.0),
    emission=0.8,
    detail="the weave of a glowing linen lampshade",
)
RUGS = {
    "red": ((0.55, 0.14, 0.12), (0.85, 0.78, 0.62), (0.2, 0.22, 0.35)),
    "blue": ((0.18, 0.25, 0.45), (0.82, 0.78, 0.66), (0.6, 0.3, 0.15)),
    "green": ((0.22, 0.38, 0.28), (0.86, 0.8, 0.64), (0.5, 0.2, 0.15)),
}


def _sofa(b: WorldBuilder, parent: SceneNode, T: np.ndarray, rng) -> SceneNode:
    fabric_name, _ = P.pick(rng, P.FABRICS)
    body_mat = P.fabric(fabric_name, stripes=False)
    cushion_mat = P.fabric(fabric_name, stripes=True)
    sofa = b.node(parent, "sofa", f"a {fabric_name} sofa with striped cushions", salience=1.5)
    w, d = rng.uniform(1.8, 2.3), 0.9
    frame = b.node(sofa, "frame", f"the {fabric_name} upholstered frame of a sofa", salience=0.5)
    b.add(frame, M.box((w, d, 0.42), (0, d / 2, 0.21)).transformed(T), body_mat)
    b.add(frame, M.box((w, 0.22, 0.5), (0, 0.11, 0.67)).transformed(T), body_mat)
    for x in (-w / 2 + 0.1, w / 2 - 0.1):
        b.add(frame, M.box((0.2, d, 0.62), (x, d / 2, 0.31)).transformed(T), body_mat)
    b.detail(frame, body_mat, via="the upholstery of the sofa")
    n = 2 if w < 2.0 else 3
    cw = (w - 0.4) / n
    for k in range(n):
        x = -w / 2 + 0.2 + cw * (k + 0.5)
        cushion = b.node(
            sofa, f"cushion_{k}", "a striped sofa cushion", salience=1.0 + rng.random()
        )
        b.add(
            cushion,
            M.box((cw - 0.02, d - 0.25, 0.14), (x, 0.22 + (d - 0.25) / 2, 0.49)).transformed(T),
            cushion_mat,
        )
        back = M.box((cw - 0.04, 0.16, 0.38), (x, 0.3, 0.72)).transformed(
            T @ M.pose([0, 0, 0], 0, 0, -8)
        )
        b.add(cushion, back, cushion_mat)
        b.detail(cushion, cushion_mat, via="the fabric of a cushion")
    return sofa


def _floor_lamp(b: WorldBuilder, parent: SceneNode, pos) -> SceneNode:
    lamp = b.node(parent, "lamp", "a floor lamp with a linen shade", salience=0.6)
    pos = np.asarray(pos, float)
    stand = b.node(lamp, "stand", "a dark metal lamp stand", salience=0.3)
    b.add(stand, M.lathe([0.16, 0.15, 0.02, 0.015], [0, 0.03, 0.04, 1.45], 16).placed(pos), P.METAL)
    b.detail(stand, P.METAL, via="the metal pole")
    shade = b.node(lamp, "shade", "a glowing linen lamp shade", salience=1.0)
    b.add(shade, M.lathe([0.24, 0.15], [1.25, 1.6], 20).placed(pos), LAMPSHADE)
    b.detail(shade, LAMPSHADE, via="the fabric of the lamp shade")
    return lamp


def _painting(b: WorldBuilder, parent: SceneNode, T: np.ndarray, w: float, h: float, rng):
    sky = [(0.55, 0.68, 0.85), (0.9, 0.7, 0.45), (0.7, 0.75, 0.8)][int(rng.integers(3))]
    art = Material(
        f"painting_{int(rng.integers(1000))}",
        "painting",
        sky,
        (0.35, 0.5, 0.3),
        (0.6, 0.55, 0.25),
        scale=max(w, h),
        seed=float(rng.uniform(0, 10)),
        detail="canvas weave under thick brush strokes",
    )
    pic = b.node(parent, "painting", "a framed landscape painting", salience=0.8)
    canvas = b.node(pic, "canvas", "a painted landscape of hills under the sky", salience=1.0)
    b.add(canvas, M.box((w, 0.02, h), (0, 0.03, h / 2)).transformed(T), art)
    b.detail(canvas, art, via="brush strokes on the canvas")
    wood = P.wood("walnut", seed=4.0)
    frame = b.node(pic, "frame", "a carved walnut picture frame", salience=0.4)
    fw = 0.06
    for size, c in [
        ((w + 2 * fw, 0.05, fw), (0, 0.025, -fw / 2)),
        ((w + 2 * fw, 0.05, fw), (0, 0.025, h + fw / 2)),
        ((fw, 0.05, h), (-w / 2 - fw / 2, 0.025, h / 2)),
        ((fw, 0.05, h), (w / 2 + fw / 2, 0.025, h / 2)),
    ]:
        b.add(frame, M.box(size, c).transformed(T), wood)
    b.detail(frame, wood, via="the corner of the frame")
    return pic


def _door(b: WorldBuilder, parent: SceneNode, T: np.ndarray, rng) -> SceneNode:
    color = ["white", "green", "blue", "yellow"][int(rng.integers(4))]
    paint = P.painted_wood(color)
    door = b.node(parent, "door", f"a panelled wooden door painted {color}", salience=1.0)
    panel = b.node(door, "panel", f"a {color} door panel", salience=1.0)
    b.add(panel, M.box((0.9, 0.05, 2.05), (0, 0.025, 1.025)).transformed(T), paint)
    for z in (0.3, 1.15):
        b.add(panel, M.box((0.6, 0.02, 0.7), (0, 0.06, z + 0.35)).transformed(T), paint)
    b.add(panel, M.sphere(0.035, 5, 8).transformed(T @ M.pose([0.33, 0.1, 1.0])), P.METAL)
    b.detail(panel, paint)
    return door


def build_indoor(spec: WorldSpec) -> World:
    """Generate an indoor world from ``spec`` (params: ``DEFAULTS``; None = random)."""
    prm = resolve_params(spec, DEFAULTS)
    rng = np.random.default_rng(spec.seed)
    sx = float(prm["width"] or rng.uniform(5.0, 7.5))
    sy = float(prm["depth"] or rng.uniform(4.5, 6.5))
    h = float(prm["height"] or rng.uniform(2.6, 3.1))
    b = WorldBuilder(spec)
    floor_wood, _ = P.pick(rng, P.WOODS)
    walls = add_room(b, (sx, sy, h), rng, P.planks(floor_wood))
    back, front, right, left = walls

    shelf_w = rng.uniform(1.1, 1.6)
    shelf_x = rng.uniform(-sx / 2 + 0.3 + shelf_w / 2, sx / 2 - 0.9 - shelf_w / 2)
    shelf = add_bookshelf(
        b, b.root, back[1] @ M.pose([shelf_x, 0, 0]), rng, shelf_w, rng.uniform(1.8, 2.2)
    )
    wood_name = shelf.caption.split(" ")[2]

    sofa = _sofa(b, b.root, front[1] @ M.pose([rng.uniform(-0.4, 0.4) * (sx - 2.6), 0.05, 0]), rng)
    _painting(
        b,
        front[0],
        front[1] @ M.pose([0, 0, 1.35]),
        rng.uniform(0.7, 1.1),
        rng.uniform(0.5, 0.7),
        rng,
    )
    _floor_lamp(b, b.root, (front[1] @ np.array([sx / 2 - 0.45, 0.45, 0, 1.0]))[:3])

    n_windows = int(prm["windows"]) if prm["windows"] is not None else int(rng.integers(1, 3))
    paint = P.painted_wood(["white", "blue", "green"][int(rng.integers(3))])
    xs = [0.0] if n_windows == 1 else [-sy * 0.22, sy * 0.22]
    for x in xs[:n_windows]:
        add_window(
            b, right[0], right[1] @ M.pose([x, 0, 0.9]), 1.1, 1.35, paint, WINDOW_VIEW, salience=1.5
        )
    _door(b, left[0], left[1] @ M.pose([rng.uniform(-0.25, 0.25) * sy, 0, 0]), rng)

    table_wood = P.wood(floor_wood if floor_wood != "pine" else "oak", seed=2.0)
    tx, ty = rng.uniform(-0.4, 0.4), rng.uniform(-0.3, 0.2)
    tw, td = rng.uniform(1.2, 1.6), rng.uniform(0.8, 0.9)
    T = M.pose([tx, ty, 0], rng.choice([0.0, 90.0]) + rng.uniform(-5, 5))
    rug_name, (ra, rb, rc) = P.pick(rng, RUGS)
    rug_mat = Material(
        f"rug_{rug_name}",
        "stripes",
        ra,
        rb,
        rc,
        scale=0.35,
        p=(0.55, 0.25, 0.0, 0.004),
        detail=f"knotted wool threads of a {rug_name} rug",
    )
    rug = b.node(b.root, "rug", f"a {rug_name} striped wool rug", salience=0.7)
    b.add(rug, M.box((tw + 1.2, td + 1.2, 0.012), (0, 0, 0.006)).transformed(T), rug_mat)
    b.detail(
        b.node(rug, "pattern", "the woven pattern of the rug", geometry=False),
        rug_mat,
        via="a band of the rug",
    )
    add_table(
        b, b.root, T, (tw, td), 0.75, table_wood, f"a {floor_wood} dining table", salience=1.2
    )
    for side in (-1, 1):
        chair_T = T @ M.pose(
            [side * tw * 0.22, side * (td / 2 + 0.25), 0], 180.0 if side > 0 else 0.0
        )
        add_chair(b, b.root, chair_T, table_wood)
    add_mug(b, b.root, (T @ np.array([0.25 * tw, 0.1, 0.75, 1.0]))[:3], rng)
    add_book_stack(
        b, b.root, (T @ np.array([-0.2 * tw, -0.1, 0.75, 1.0]))[:3], rng, rng.uniform(0, 360)
    )
    add_plant(b, b.root, [sx / 2 - 0.45, sy / 2 - 0.45, 0.0], rng, rng.uniform(0.9, 1.3))

    pendant = b.node(b.root, "pendant", "a pendant lamp hanging from the ceiling", salience=0.3)
    b.add(pendant, M.lathe([0.004, 0.004], [h - 0.6, h], 6).placed([0, 0, 0]), P.METAL)
    b.add(pendant, M.lathe([0.22, 0.06], [h - 0.75, h - 0.55], 18).placed([0, 0, 0]), LAMPSHADE)
    b.detail(pendant, LAMPSHADE, via="the shade of the pendant lamp")

    fabric = sofa.caption.split(" sofa")[0]
    b.root.caption = f"a cozy living room with a {wood_name} bookshelf, {fabric} sofa and a table"
    lighting = Lighting(
        point=(0.0, 0.0, h - 0.85),
        sun_color=(4.2, 3.8, 3.2),
        sky_zenith=(0.85, 0.83, 0.8),
        sky_horizon=(0.85, 0.83, 0.8),
        ground=(0.55, 0.45, 0.36),
        ambient=0.42,
        clouds=False,
    )
    nav = Navigation(
        region_min=(-sx / 2 + 0.5, -sy / 2 + 0.5),
        region_max=(sx / 2 - 0.5, sy / 2 - 0.5),
        eye_height=(1.2, 1.75),
        center=(0.0, 0.0, 1.2),
        clearance=0.35,
        min_view_depth=0.8,
        preview_eye=(shelf_x - 0.4 * np.sign(shelf_x + 1e-9) * sx * 0.5, -sy / 2 + 0.6, 1.6),
        preview_target=(shelf_x, sy / 2 - 0.3, 1.0),
        ground_z=0.0,
    )
    return b.build(lighting, nav)
