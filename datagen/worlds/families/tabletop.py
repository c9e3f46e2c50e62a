"""Tabletop family: object close-ups on a wooden table in a small room under a pendant lamp."""

from __future__ import annotations

import numpy as np

from datagen.worlds import meshes as M
from datagen.worlds.builder import WorldBuilder
from datagen.worlds.families import palette as P
from datagen.worlds.families.props import (
    add_book_stack,
    add_fruit_bowl,
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

DEFAULTS = {"objects": None, "table_length": None}
TABLE_HEIGHT = 0.75

NEWSPRINT = Material(
    "newsprint",
    "text",
    (0.86, 0.84, 0.78),
    (0.08, 0.08, 0.08),
    (0.1, 0.1, 0.1),
    scale=0.004,
    p=(1.5, 0.0, 0.0, 0.0, 0.2),
    seed=11.0,
    detail="tiny printed letters on newsprint",
)
CARDBOARD_LABEL = Material(
    "label",
    "text",
    (0.78, 0.64, 0.44),
    (0.55, 0.12, 0.1),
    (0.12, 0.2, 0.45),
    scale=0.012,
    p=(1.7, 0.0, 0.03, 0.12, 0.15),
    seed=5.0,
    detail="red letters printed on brown cardboard",
)
WAX = Material(
    "wax",
    "noise",
    (0.93, 0.9, 0.82),
    (0.88, 0.84, 0.74),
    (0.8, 0.75, 0.65),
    scale=0.02,
    p=(0.5, 0.02),
    detail="drips of pale candle wax",
)


def _newspaper(b: WorldBuilder, parent: SceneNode, pos, yaw: float) -> SceneNode:
    paper = b.node(parent, "newspaper", "a folded newspaper", salience=1.0)
    b.add(paper, M.box((0.3, 0.4, 0.006), (0, 0, 0.003)).placed(pos, yaw), NEWSPRINT)
    column = b.node(paper, "column", "a column of small print", geometry=False)
    b.detail(column, NEWSPRINT, via="a printed paragraph")
    return paper


def _box(b: WorldBuilder, parent: SceneNode, pos, yaw: float, rng) -> SceneNode:
    box = b.node(parent, "box", "a cardboard box with a printed label", salience=0.9)
    size = (rng.uniform(0.12, 0.2), rng.uniform(0.08, 0.14), rng.uniform(0.12, 0.22))
    b.add(box, M.box(size, (0, 0, size[2] / 2)).placed(pos, yaw), CARDBOARD_LABEL)
    label = b.node(box, "label", "the printed label of a box", geometry=False)
    b.detail(label, CARDBOARD_LABEL, via="a line of printed text")
    return box


def _candle(b: WorldBuilder, parent: SceneNode, pos, rng) -> SceneNode:
    candle = b.node(parent, "candle", "a white candle in a brass holder", salience=0.6)
    brass = Material("brass", "plain", (0.72, 0.55, 0.25), scale=0.05, detail="tarnished brass")
    holder = b.node(candle, "holder", "a brass candle holder", salience=0.3)
    b.add(holder, M.lathe([0.05, 0.045, 0.018, 0.03], [0, 0.01, 0.03, 0.05], 16).placed(pos), brass)
    b.detail(holder, brass, via="the rim of the holder")
    wax = b.node(candle, "wax", "a pale wax candle", salience=1.0)
    h = rng.uniform(0.12, 0.22)
    b.add(wax, M.cylinder(0.02, h, 14).placed(np.asarray(pos) + np.array([0, 0, 0.045])), WAX)
    b.detail(wax, WAX, via="the side of the candle")
    return candle


def _vase(b: WorldBuilder, parent: SceneNode, pos, rng) -> SceneNode:
    color, rgb = P.pick(rng, P.PAINTS)
    glaze = Material(
        f"vase_{color}",
        "stripes",
        rgb,
        (0.92, 0.9, 0.84),
        tuple(0.6 * x for x in rgb),
        scale=0.04,
        p=(0.4, 0.4, 1.0, 0.0),
        detail=f"hand-painted {color} bands on glazed ceramic",
    )
    vase = b.node(parent, "vase", f"a {color} striped ceramic vase", salience=0.8)
    body = b.node(vase, "body", "the painted belly of a vase", salience=1.0)
    prof_r = np.array([0.04, 0.07, 0.075, 0.05, 0.03, 0.04])
    prof_z = np.array([0.0, 0.05, 0.12, 0.2, 0.25, 0.28]) * rng.uniform(0.9, 1.3)
    b.add(body, M.lathe(prof_r, prof_z, 20).placed(pos), glaze)
    b.detail(body, glaze, via="a painted band")
    return vase


BUILDERS = ("books", "mug", "bowl", "newspaper", "box", "candle", "vase", "plant", "mug2")


def build_tabletop(spec: WorldSpec) -> World:
    """Generate a tabletop world from ``spec`` (params: ``DEFAULTS``; None = random)."""
    prm = resolve_params(spec, DEFAULTS)
    rng = np.random.default_rng(spec.seed)
    b = WorldBuilder(spec)
    floor_wood, _ = P.pick(rng, P.WOODS)
    room = (rng.uniform(4.5, 5.5), rng.uniform(4.5, 5.5), rng.uniform(2.6, 2.9))
    walls = add_room(b, room, rng, P.planks(floor_wood))
    paint = P.painted_wood(["white", "blue", "green"][int(rng.integers(3))])
    add_window(
        b,
        walls[0][0],
        walls[0][1] @ M.pose([rng.uniform(-0.8, 0.8), 0, 0.9]),
        1.2,
        1.3,
        paint,
        WINDOW_VIEW,
    )

    length = float(prm["table_length"] or rng.uniform(1.4, 1.8))
    depth = rng.uniform(0.85, 1.0)
    top_wood, _ = P.pick(rng, P.WOODS)
    table_mat = P.wood(top_wood, seed=3.0)
    table = add_table(
        b, b.root, np.eye(4), (length, depth), TABLE_HEIGHT, table_mat, f"a {top_wood} table", 0.5
    )

    n_obj = int(prm["objects"]) if prm["objects"] is not None else int(rng.integers(4, 7))
    kinds = ["books", *list(rng.permutation(BUILDERS[1:]))[: n_obj - 1]]
    taken: list[tuple[np.ndarray, float]] = []
    names = []
    for kind in kinds:
        radius = {"books": 0.17, "bowl": 0.15, "newspaper": 0.25, "plant": 0.16, "box": 0.13}.get(
            kind, 0.08
        )
        for _ in range(100):
            xy = rng.uniform(
                [-length / 2 + radius + 0.05, -depth / 2 + radius + 0.05],
                [length / 2 - radius - 0.05, depth / 2 - radius - 0.05],
            )
            if all(np.linalg.norm(xy - c) > r + radius + 0.02 for c, r in taken):
                break
        else:
            continue
        taken.append((xy, radius))
        pos = np.array([xy[0], xy[1], TABLE_HEIGHT])
        yaw = float(rng.uniform(0, 360))
        if kind == "books":
            node = add_book_stack(b, b.root, pos, rng, yaw)
        elif kind in ("mug", "mug2"):
            node = add_mug(b, b.root, pos, rng)
        elif kind == "bowl":
            node = add_fruit_bowl(b, b.root, pos, rng)
        elif kind == "newspaper":
            node = _newspaper(b, b.root, pos, yaw)
        elif kind == "box":
            node = _box(b, b.root, pos, yaw, rng)
        elif kind == "candle":
            node = _candle(b, b.root, pos, rng)
        elif kind == "vase":
            node = _vase(b, b.root, pos, rng)
        else:
            node = add_plant(b, b.root, pos, rng, 0.45)
        names.append(node.caption)
    lamp_mat = Material(
        "pendant_shade",
        "noise",
        (0.95, 0.9, 0.78),
        (0.9, 0.84, 0.7),
        (0.8, 0.7, 0.5),
        scale=0.05,
        p=(0.6, 0.0),
        emission=0.8,
        detail="the weave of a glowing linen lampshade",
    )
    lamp = b.node(b.root, "pendant", "a pendant lamp above the table", salience=0.2)
    h = room[2]
    b.add(lamp, M.lathe([0.004, 0.004], [1.95, h], 6), P.METAL)
    b.add(lamp, M.lathe([0.25, 0.07], [1.8, 2.0], 20), lamp_mat)
    b.detail(lamp, lamp_mat, via="the shade of the lamp")

    listed = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    b.root.caption = f"{table.caption} with {listed}"
    lighting = Lighting(
        point=(0.0, 0.0, 1.65),
        sun_color=(2.6, 2.4, 2.1),
        sky_zenith=(0.86, 0.84, 0.8),
        sky_horizon=(0.86, 0.84, 0.8),
        ground=(0.55, 0.45, 0.36),
        ambient=0.45,
        clouds=False,
    )
    ang = rng.uniform(0, 2 * np.pi)
    nav = Navigation(
        region_min=(-room[0] / 2 + 0.4, -room[1] / 2 + 0.4),
        region_max=(room[0] / 2 - 0.4, room[1] / 2 - 0.4),
        eye_height=(1.0, 1.45),
        center=(0.0, 0.0, TABLE_HEIGHT + 0.05),
        clearance=0.15,
        min_view_depth=0.3,
        preview_eye=(1.3 * np.cos(ang), 1.3 * np.sin(ang), 1.35),
        preview_target=(0.0, 0.0, TABLE_HEIGHT + 0.05),
        ground_z=0.0,
        ring=(max(length, depth) / 2 + 0.3, max(length, depth) / 2 + 0.9),
    )
    return b.build(lighting, nav)
