"""Room shell shared by the indoor and tabletop families: floor, walls, ceiling, skirting."""

from __future__ import annotations

import numpy as np

from datagen.worlds import meshes as M
from datagen.worlds.builder import WorldBuilder
from datagen.worlds.families import palette as P
from datagen.worlds.families.props import wall_frame
from datagen.worlds.materials import Material
from datagen.worlds.scene_graph import SceneNode

PASTELS = {
    "cream": (0.86, 0.82, 0.72),
    "sage green": (0.66, 0.72, 0.6),
    "pale blue": (0.66, 0.74, 0.82),
    "terracotta": (0.78, 0.55, 0.45),
    "white": (0.88, 0.87, 0.84),
}
CEILING = Material(
    "ceiling",
    "noise",
    (0.9, 0.89, 0.86),
    (0.84, 0.83, 0.8),
    (0.7, 0.7, 0.68),
    scale=0.8,
    p=(1.0, 0.02),
    detail="tiny pits in white ceiling plaster",
)
SKIRTING = Material("skirting", "plain", (0.9, 0.88, 0.84), scale=0.1, detail="glossy white paint")
WINDOW_VIEW = Material(
    "window_view",
    "glass",
    (0.82, 0.88, 0.95),
    (0.45, 0.62, 0.88),
    (0.25, 0.38, 0.2),
    scale=1.3,
    emission=1.0,
    detail="a bright garden seen through the glass",
)


def wall_material(rng, index: int) -> tuple[Material, str]:
    """A wall finish and its caption noun phrase (plaster, striped wallpaper or brick)."""
    style = int(rng.integers(5))
    if style == 0:
        name, _ = P.pick(rng, {"red brick": 0, "yellow brick": 0})
        return P.bricks(name, seed=float(index)), f"an exposed {name} wall"
    color, rgb = P.pick(rng, PASTELS)
    if style == 1:
        darker = tuple(0.85 * x for x in rgb)
        accent = tuple(0.6 * x for x in rgb)
        m = Material(
            f"wallpaper_{color.replace(' ', '_')}",
            "stripes",
            rgb,
            darker,
            accent,
            scale=0.12,
            p=(0.45, 0.45, 0.0, 0.0015),
            detail=f"the paper texture of {color} striped wallpaper",
        )
        return m, f"a wall with {color} striped wallpaper"
    return P.plaster(rgb, f"plaster_{color.replace(' ', '_')}"), f"a {color} painted wall"


def add_room(
    b: WorldBuilder, size, rng, floor: Material, parent: SceneNode | None = None
) -> list[tuple[SceneNode, np.ndarray, float]]:
    """Closed room ``size`` = (x, y, height) centred on the origin, floor at z = 0.

    Returns the walls as (node, frame ``[4, 4]`` at the wall's bottom centre with +y into the
    room, wall length), in the order +y, -y, +x, -x.
    """
    parent = parent or b.root
    sx, sy, h = size
    t = 0.2
    fl = b.node(
        parent,
        "floor",
        "a wooden plank floor" if "plank" in floor.name else "a floor",
        salience=0.3,
    )
    b.add(fl, M.box((sx + 2 * t, sy + 2 * t, t), (0, 0, -t / 2)), floor)
    b.detail(
        b.node(fl, "board", "a single floorboard", geometry=False),
        floor,
        via="the grain of a board",
    )
    ceil = b.node(parent, "ceiling", "a white plaster ceiling", salience=0.05)
    b.add(ceil, M.box((sx + 2 * t, sy + 2 * t, t), (0, 0, h + t / 2)), CEILING)
    b.detail(ceil, CEILING, via="a patch of ceiling plaster")
    walls = []
    specs = [
        ((0, sy / 2, 0), (0, -1, 0), sx, (sx + 2 * t, t, h), (0, sy / 2 + t / 2, h / 2)),
        ((0, -sy / 2, 0), (0, 1, 0), sx, (sx + 2 * t, t, h), (0, -sy / 2 - t / 2, h / 2)),
        ((sx / 2, 0, 0), (-1, 0, 0), sy, (t, sy, h), (sx / 2 + t / 2, 0, h / 2)),
        ((-sx / 2, 0, 0), (1, 0, 0), sy, (t, sy, h), (-sx / 2 - t / 2, 0, h / 2)),
    ]
    for k, (origin, inward, length, box_size, center) in enumerate(specs):
        mat, caption = wall_material(rng, k)
        node = b.node(parent, f"wall_{k}", caption, salience=0.2 + 0.1 * rng.random())
        b.add(node, M.box(box_size, center), mat)
        surface = b.node(
            node,
            "surface",
            f"a patch of {caption.removeprefix('a ').removeprefix('an ')}",
            geometry=False,
        )
        b.detail(surface, mat, via="the wall finish up close")
        T = wall_frame(origin, inward)
        skirt = M.box((length, 0.02, 0.1), (0, 0.01, 0.05)).transformed(T)
        b.add(node, skirt, SKIRTING)
        walls.append((node, T, length))
    return walls
