"""Named colours and material factories shared by the families (sRGB in [0, 1])."""

from __future__ import annotations

import numpy as np

from datagen.worlds.materials import Material

PAINTS = {
    "blue": (0.2, 0.38, 0.62),
    "green": (0.28, 0.46, 0.3),
    "red": (0.6, 0.17, 0.14),
    "white": (0.86, 0.85, 0.8),
    "yellow": (0.84, 0.68, 0.28),
    "teal": (0.18, 0.48, 0.5),
}
CLOTHS = {
    "red": (0.52, 0.09, 0.09),
    "blue": (0.1, 0.18, 0.42),
    "green": (0.12, 0.32, 0.18),
    "brown": (0.38, 0.23, 0.13),
    "black": (0.07, 0.07, 0.08),
    "cream": (0.84, 0.78, 0.62),
    "orange": (0.78, 0.42, 0.13),
    "purple": (0.33, 0.16, 0.38),
    "grey": (0.45, 0.45, 0.47),
}
INKS = {"gold": (0.85, 0.68, 0.3), "white": (0.92, 0.9, 0.86), "black": (0.05, 0.05, 0.05)}
WOODS = {
    "oak": ((0.66, 0.48, 0.3), (0.42, 0.27, 0.14)),
    "walnut": ((0.4, 0.25, 0.15), (0.2, 0.12, 0.06)),
    "pine": ((0.8, 0.64, 0.42), (0.6, 0.42, 0.22)),
    "cherry": ((0.62, 0.32, 0.19), (0.4, 0.17, 0.1)),
}
BRICKS = {
    "red brick": ((0.58, 0.24, 0.16), (0.72, 0.7, 0.64), (0.3, 0.12, 0.09)),
    "yellow brick": ((0.78, 0.64, 0.42), (0.6, 0.58, 0.54), (0.5, 0.38, 0.24)),
    "grey stone": ((0.56, 0.55, 0.52), (0.42, 0.41, 0.38), (0.36, 0.36, 0.33)),
}
FABRICS = {
    "mustard": ((0.72, 0.55, 0.18), (0.62, 0.46, 0.14)),
    "navy": ((0.14, 0.2, 0.36), (0.2, 0.27, 0.45)),
    "sage": ((0.5, 0.58, 0.46), (0.42, 0.5, 0.38)),
    "grey": ((0.5, 0.5, 0.52), (0.42, 0.42, 0.44)),
    "rust": ((0.6, 0.28, 0.16), (0.5, 0.22, 0.12)),
}


def pick(rng: np.random.Generator, palette: dict):
    """A (name, value) pair drawn from ``palette``."""
    name = list(palette)[int(rng.integers(len(palette)))]
    return name, palette[name]


def wood(name: str, seed: float = 0.0) -> Material:
    light, dark = WOODS[name]
    return Material(
        f"wood_{name}",
        "wood",
        light,
        dark,
        scale=0.012,
        seed=seed,
        detail=f"fine growth rings and fibres in {name} wood",
    )


def planks(name: str) -> Material:
    light, dark = WOODS[name]
    return Material(
        f"planks_{name}",
        "planks",
        light,
        dark,
        scale=0.006,
        p=(0.14, 1.3),
        seed=3.0,
        detail=f"wood grain in an {name} floorboard",
    )


def painted_wood(color: str) -> Material:
    return Material(
        f"paint_{color}",
        "paint",
        PAINTS[color],
        (0.55, 0.5, 0.42),
        (0.22, 0.19, 0.16),
        scale=0.06,
        p=(0.75,),
        detail=f"peeling {color} paint on weathered wood",
    )


def bricks(name: str, seed: float = 0.0) -> Material:
    brick, mortar, dark = BRICKS[name]
    size = (0.4, 0.2, 0.015) if name == "grey stone" else (0.22, 0.065, 0.01)
    return Material(
        f"bricks_{name.replace(' ', '_')}",
        "bricks",
        brick,
        mortar,
        dark,
        scale=size[0],
        p=(size[1], size[2], 0.25),
        seed=seed,
        detail=f"a hairline crack in a weathered {name}",
    )


def plaster(color: tuple, name: str = "plaster") -> Material:
    darker = tuple(0.88 * x for x in color)
    return Material(
        name,
        "noise",
        color,
        darker,
        tuple(0.7 * x for x in color),
        scale=0.5,
        p=(1.2, 0.04),
        detail="tiny pits in painted plaster",
    )


def fabric(name: str, stripes: bool) -> Material:
    a, b = FABRICS[name]
    if stripes:
        return Material(
            f"fabric_{name}_striped",
            "stripes",
            a,
            (0.85, 0.82, 0.74),
            b,
            scale=0.12,
            p=(0.5, 0.15, 0.0, 0.003),
            detail=f"woven threads of {name} striped fabric",
        )
    return Material(
        f"fabric_{name}",
        "stripes",
        a,
        b,
        a,
        scale=0.02,
        p=(0.5, 0.5, 0.0, 0.0025),
        detail=f"woven threads of {name} upholstery",
    )


def book_spine(color: str, ink: str, seed: float) -> Material:
    return Material(
        f"spine_{color}_{ink}",
        "text",
        CLOTHS[color],
        INKS[ink],
        INKS[ink],
        scale=0.012,
        p=(2.2, 1.0, 0.0, 0.0, 0.3),
        seed=seed,
        detail=f"{ink} letters printed on a {color} cloth spine",
    )


def cloth(color: str) -> Material:
    c = CLOTHS[color]
    return Material(
        f"cloth_{color}",
        "noise",
        c,
        tuple(0.8 * x for x in c),
        c,
        scale=0.05,
        p=(0.6, 0.0),
        detail=f"the woven texture of {color} book cloth",
    )


LEAF = Material(
    "leaf_green",
    "leaf",
    (0.2, 0.42, 0.12),
    (0.55, 0.68, 0.3),
    (0.45, 0.35, 0.12),
    scale=0.12,
    p=(0.06,),
    detail="fine veins on a green leaf",
)
FOLIAGE = Material(
    "foliage",
    "foliage",
    (0.1, 0.24, 0.07),
    (0.25, 0.45, 0.14),
    (0.55, 0.6, 0.2),
    scale=0.35,
    detail="clusters of overlapping leaves",
)
BARK = Material(
    "bark",
    "bark",
    (0.42, 0.34, 0.26),
    (0.16, 0.12, 0.09),
    (0.55, 0.6, 0.45),
    scale=0.25,
    detail="lichen on furrowed bark",
)
TERRACOTTA = Material(
    "terracotta",
    "noise",
    (0.66, 0.34, 0.2),
    (0.55, 0.27, 0.16),
    (0.8, 0.78, 0.7),
    scale=0.1,
    p=(1.0, 0.06),
    detail="mineral bloom on unglazed terracotta",
)
SOIL = Material(
    "soil",
    "noise",
    (0.22, 0.15, 0.1),
    (0.12, 0.08, 0.05),
    (0.5, 0.45, 0.35),
    scale=0.03,
    p=(1.5, 0.1),
    detail="crumbs of dark potting soil",
)
METAL = Material("metal_dark", "plain", (0.18, 0.18, 0.2), scale=0.2, detail="brushed dark metal")
