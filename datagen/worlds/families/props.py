"""Object builders shared by the families: trees, plants, books, furniture, windows, tableware.

Each builder takes the ``WorldBuilder``, a parent scene node and a placement, adds geometry with
materials and returns the object's node (level = parent level + 1) with finer nodes below it.
"""

from __future__ import annotations

import numpy as np
import torch

from datagen.worlds import meshes as M
from datagen.worlds.builder import WorldBuilder
from datagen.worlds.families import palette as P
from datagen.worlds.materials import Material
from datagen.worlds.noise import fbm
from datagen.worlds.scene_graph import SceneNode

UP = np.array([0.0, 0.0, 1.0])


def np_fbm(p: np.ndarray, octaves: int = 4) -> np.ndarray:
    """fbm noise (``noise.fbm``) at numpy points ``[N, 2|3]`` -> ``[N]`` float64."""
    return fbm(torch.from_numpy(np.asarray(p, np.float32)), octaves).double().numpy()


def wall_frame(origin, inward) -> np.ndarray:
    """``[4, 4]``: local x along the wall, y = ``inward`` (out of the wall), z up."""
    inward = np.asarray(inward, float)
    return M.frame_pose(origin, np.cross(inward, UP), UP)


def add_tree(b: WorldBuilder, parent: SceneNode, base, rng, height: float) -> SceneNode:
    """Broadleaf tree: tapered trunk, branches, canopy blobs and individual veined leaves."""
    kind = ["an oak tree", "a maple tree", "a linden tree"][int(rng.integers(3))]
    tree = b.node(parent, "tree", kind, salience=1.0 + rng.random())
    base = np.asarray(base, float)
    trunk_h = height * rng.uniform(0.45, 0.55)
    r0 = 0.06 * height * rng.uniform(0.8, 1.2)
    trunk = b.node(tree, "trunk", "a gnarled tree trunk", salience=0.5)
    prof_z = np.linspace(-0.3, trunk_h + 0.6, 6)
    prof_r = r0 * np.array([1.5, 1.15, 1.0, 0.9, 0.75, 0.55])
    b.add(trunk, M.lathe(prof_r, prof_z, 14).placed(base), P.BARK)
    bark = b.node(trunk, "bark", "rough furrowed bark", geometry=False)
    b.detail(bark, P.BARK)
    canopy = b.node(tree, "canopy", "a leafy branch", salience=2.0)
    top = base + np.array([0.0, 0.0, trunk_h])
    centers = []
    for k in range(int(rng.integers(4, 7))):
        ang = rng.uniform(0, 2 * np.pi)
        spread = 0.0 if k == 0 else rng.uniform(0.12, 0.28) * height
        r = height * (rng.uniform(0.26, 0.34) if k == 0 else rng.uniform(0.17, 0.26))
        lift = r * 0.7 + rng.uniform(-0.05, 0.2) * height
        c = top + np.array([spread * np.cos(ang), spread * np.sin(ang), lift])
        centers.append((c, r))
        seed = rng.random() * 10

        def bump(d, seed=seed):
            return 0.7 + 0.6 * np_fbm(d * 2.2 + seed, 4)

        b.add(canopy, M.sphere(r, 9, 16, bump).placed(c), P.FOLIAGE)
        branch_dir = c - top
        length = np.linalg.norm(branch_dir)
        if length > 1e-6:
            T = M.frame_pose(top, _perp(branch_dir), branch_dir)
            b.add(trunk, M.lathe([r0 * 0.5, r0 * 0.2], [0, length], 8).transformed(T), P.BARK)
    leaves = b.node(canopy, "leaves", "a green leaf", salience=2.0)
    n_leaves = int(rng.integers(160, 240))
    blade = M.leaf(P.LEAF.scale, P.LEAF.p[0])
    parts = []
    for i in range(n_leaves):
        c, r = centers[i % len(centers)]
        d = rng.normal(0, 1, 3)
        d[2] = abs(d[2]) * 0.8 + 0.1
        d /= np.linalg.norm(d)
        p = c + d * r * rng.uniform(0.9, 1.02)
        normal = d + rng.normal(0, 0.5, 3)
        T = M.frame_pose(p, _perp(normal) * rng.choice([-1, 1]) + rng.normal(0, 0.3, 3), normal)
        parts.append(blade.transformed(T))
    b.add(leaves, M.merge(parts), P.LEAF)
    b.detail(leaves, P.LEAF)
    return tree


def _perp(v) -> np.ndarray:
    v = np.asarray(v, float)
    a = np.array([1.0, 0.0, 0.0]) if abs(v[0]) < 0.9 * np.linalg.norm(v) else np.array([0, 1.0, 0])
    p = np.cross(v, a)
    return p / np.linalg.norm(p)


def add_plant(b: WorldBuilder, parent: SceneNode, base, rng, size: float = 0.6) -> SceneNode:
    """Potted plant: terracotta pot, soil, stems and leaves."""
    plant = b.node(parent, "plant", "a potted plant", salience=0.8 + rng.random())
    base = np.asarray(base, float)
    pot_h, pot_r = 0.35 * size, 0.2 * size
    pot = b.node(plant, "pot", "a terracotta flower pot", salience=0.5)
    b.add(
        pot,
        M.lathe([pot_r * 0.7, pot_r, pot_r * 1.08], [0, pot_h * 0.9, pot_h], 18).placed(base),
        P.TERRACOTTA,
    )
    b.add(pot, M.disc(pot_r * 0.98, 18, pot_h * 0.96).placed(base), P.SOIL)
    b.detail(pot, P.TERRACOTTA, via="the rim of a clay pot")
    foliage = b.node(plant, "foliage", "broad green leaves", salience=1.0)
    leaf_mat = Material(
        "leaf_plant",
        "leaf",
        (0.12, 0.36, 0.12),
        (0.45, 0.62, 0.3),
        (0.5, 0.45, 0.15),
        scale=0.16 * size / 0.6,
        p=(0.09 * size / 0.6,),
        detail="veins on a glossy houseplant leaf",
    )
    blade = M.leaf(leaf_mat.scale, leaf_mat.p[0])
    parts, stems = [], []
    for _ in range(int(rng.integers(14, 24))):
        ang = rng.uniform(0, 2 * np.pi)
        h = pot_h + rng.uniform(0.15, 0.9) * size
        reach = rng.uniform(0.05, 0.3) * size
        tip = base + np.array([reach * np.cos(ang), reach * np.sin(ang), h])
        root = base + np.array([0.0, 0.0, pot_h * 0.9])
        stems.append(
            M.lathe([0.006, 0.004], [0, np.linalg.norm(tip - root)], 5).transformed(
                M.frame_pose(root, _perp(tip - root), tip - root)
            )
        )
        out = np.array([np.cos(ang), np.sin(ang), rng.uniform(-0.2, 0.6)])
        normal = UP * 0.8 + rng.normal(0, 0.4, 3)
        x_axis = out - normal * np.dot(out, normal) / np.dot(normal, normal)
        parts.append(blade.transformed(M.frame_pose(tip, x_axis, normal)))
    b.add(foliage, M.merge(stems), Material("stem", "plain", (0.25, 0.4, 0.15), scale=0.05))
    leaf_node = b.node(foliage, "leaf", "a single houseplant leaf", salience=1.0)
    b.add(leaf_node, M.merge(parts), leaf_mat)
    b.detail(leaf_node, leaf_mat)
    return plant


def add_book(b: WorldBuilder, parent: SceneNode, size, T, rng, level: int = 3) -> SceneNode:
    """A hardcover book: ``size`` = (thickness x, depth y, height z) in its frame ``T``; the
    printed spine faces local +y."""
    color, _ = P.pick(rng, P.CLOTHS)
    ink = "black" if color == "cream" else ["gold", "white"][int(rng.integers(2))]
    t, d, h = size
    book = b.node(parent, "book", f"a {color} hardcover book", level=level, salience=rng.random())
    spine = P.book_spine(color, ink, float(rng.integers(1000)))
    body = P.cloth(color)
    b.add(book, M.box((t, d - 0.004, h), (0, -0.002, h / 2)).transformed(T), body)
    b.add(book, M.box((t, 0.004, h), (0, d / 2 - 0.002, h / 2)).transformed(T), spine)
    if level < 3:
        title = f"the spine of a {color} book with a printed title"
        b.detail(b.node(book, "spine", title, level=3, geometry=False), spine)
    else:
        b.detail(book, spine)
    return book


def add_bookshelf(
    b: WorldBuilder, parent: SceneNode, T, rng, width: float, height: float
) -> SceneNode:
    """Open bookshelf in frame ``T`` (x along the wall, +y out of it, z up), filled with books."""
    wood_name, _ = P.pick(rng, P.WOODS)
    mat = P.wood(wood_name, seed=1.0)
    shelf = b.node(parent, "bookshelf", f"a tall {wood_name} bookshelf full of books", salience=3.0)
    depth, th = 0.32, 0.025
    frame = b.node(shelf, "frame", f"the {wood_name} frame of a bookshelf", salience=0.2)
    for x in (-width / 2 + th / 2, width / 2 - th / 2):
        b.add(frame, M.box((th, depth, height), (x, depth / 2, height / 2)).transformed(T), mat)
    b.add(frame, M.box((width, 0.01, height), (0, 0.005, height / 2)).transformed(T), mat)
    b.detail(frame, mat, via=f"a {wood_name} board")
    n_shelves = int(rng.integers(4, 6))
    zs = np.linspace(0.06, height - th, n_shelves + 1)
    for k, z in enumerate(zs):
        b.add(
            frame,
            M.box((width - 2 * th, depth, th), (0, depth / 2, z + th / 2)).transformed(T),
            mat,
        )
        if k == n_shelves:
            break
        gap = zs[k + 1] - z - th
        row = b.node(
            shelf,
            f"shelf_{k}",
            "a row of books with patterned spines",
            salience=1.0 + rng.random(),
            geometry=False,
        )
        x = -width / 2 + th + 0.01
        while x < width / 2 - th - 0.06:
            t = rng.uniform(0.02, 0.055)
            if rng.random() < 0.08:
                x += rng.uniform(0.05, 0.15)
                continue
            h = min(gap - 0.01, rng.uniform(0.6, 0.95) * gap)
            d = rng.uniform(0.16, 0.24)
            Tb = T @ M.pose([x + t / 2, 0.02 + d / 2 + rng.uniform(0, 0.02), z + th])
            add_book(b, row, (t, d, h), Tb, rng, level=3)
            x += t + rng.uniform(0.0, 0.004)
    return shelf


def add_table(
    b: WorldBuilder,
    parent: SceneNode,
    T,
    size,
    height: float,
    mat: Material,
    caption: str,
    salience: float = 1.0,
) -> SceneNode:
    """Table with a ``size`` = (x, y) top at ``height`` and four legs, in frame ``T``."""
    sx, sy = size
    table = b.node(parent, "table", caption, salience=salience)
    top = b.node(table, "tabletop", "a wooden tabletop", salience=1.0)
    th = 0.04
    b.add(top, M.box((sx, sy, th), (0, 0, height - th / 2)).transformed(T), mat)
    legs = b.node(table, "legs", "a turned wooden table leg", salience=0.3)
    for dx in (-1, 1):
        for dy in (-1, 1):
            leg = M.lathe([0.03, 0.035, 0.025, 0.035], [0, 0.1, 0.5, height - th], 10)
            b.add(
                legs,
                leg.transformed(T @ M.pose([dx * (sx / 2 - 0.07), dy * (sy / 2 - 0.07), 0])),
                mat,
            )
    grain = b.node(top, "grain", "the grain of the tabletop", geometry=False)
    b.detail(grain, mat)
    b.detail(legs, mat, via="a turned profile")
    return table


def add_chair(b: WorldBuilder, parent: SceneNode, T, mat: Material) -> SceneNode:
    """Dining chair in frame ``T`` facing +y."""
    chair = b.node(parent, "chair", "a wooden chair", salience=0.5)
    seat = b.node(chair, "seat", "a wooden chair seat")
    b.add(seat, M.box((0.44, 0.42, 0.04), (0, 0, 0.45)).transformed(T), mat)
    for dx in (-0.19, 0.19):
        for dy in (-0.18, 0.18):
            b.add(seat, M.box((0.035, 0.035, 0.45), (dx, dy, 0.225)).transformed(T), mat)
    back = b.node(chair, "back", "the slatted back of a chair", salience=0.5)
    for dx in (-0.19, 0.19):
        b.add(back, M.box((0.035, 0.035, 0.5), (dx, -0.19, 0.72)).transformed(T), mat)
    for z in (0.62, 0.78, 0.93):
        b.add(back, M.box((0.38, 0.02, 0.06), (0, -0.19, z)).transformed(T), mat)
    b.detail(seat, mat, via="wood grain on a chair seat")
    b.detail(back, mat, via="a chair slat")
    return chair


def add_window(
    b: WorldBuilder,
    parent: SceneNode,
    T,
    width: float,
    height: float,
    paint: Material,
    pane: Material,
    salience: float = 1.0,
) -> SceneNode:
    """Window on a wall: painted frame with a cross bar, sill and a pane, in frame ``T`` (x along
    the wall, +y out of the wall, origin at the bottom centre on the wall surface)."""
    color = paint.name.removeprefix("paint_")
    win = b.node(parent, "window", f"a wooden window frame painted {color}", salience=salience)
    fw, fd = 0.07, 0.08
    frame = b.node(
        win, "frame", f"the corner of a {color} window frame with flaking paint", salience=2.0
    )
    pieces = [
        ((width, fd, fw), (0, fd / 2, fw / 2)),
        ((width, fd, fw), (0, fd / 2, height - fw / 2)),
        ((fw, fd, height), (-width / 2 + fw / 2, fd / 2, height / 2)),
        ((fw, fd, height), (width / 2 - fw / 2, fd / 2, height / 2)),
        ((fw * 0.6, fd * 0.8, height), (0, fd * 0.4, height / 2)),
        ((width, fd * 0.8, fw * 0.6), (0, fd * 0.4, height * 0.55)),
    ]
    for size, c in pieces:
        b.add(frame, M.box(size, c).transformed(T), paint)
    b.detail(frame, paint)
    glass = b.node(win, "pane", "a glass window pane", salience=0.5)
    b.add(
        glass, M.box((width - fw, 0.01, height - fw), (0, 0.012, height / 2)).transformed(T), pane
    )
    b.detail(glass, pane, via="the view through the glass")
    sill = b.node(win, "sill", "a stone window sill", salience=0.3)
    stone = Material(
        "sill_stone",
        "noise",
        (0.7, 0.68, 0.62),
        (0.55, 0.53, 0.48),
        (0.4, 0.4, 0.38),
        scale=0.08,
        p=(1.2, 0.05),
        detail="pitted limestone",
    )
    b.add(
        sill,
        M.box((width + 0.12, fd + 0.1, 0.05), (0, (fd + 0.1) / 2, -0.025)).transformed(T),
        stone,
    )
    b.detail(sill, stone, via="the worn edge of the sill")
    return win


def add_mug(b: WorldBuilder, parent: SceneNode, pos, rng) -> SceneNode:
    """Ceramic mug with a handle; glaze plain, striped or printed."""
    color, rgb = P.pick(rng, P.PAINTS)
    style = int(rng.integers(3))
    mug = b.node(parent, "mug", f"a {color} ceramic mug", salience=0.8 + rng.random())
    if style == 0:
        glaze = Material(
            f"glaze_{color}", "plain", rgb, scale=0.05, detail=f"crazing in {color} glaze"
        )
    elif style == 1:
        glaze = Material(
            f"glaze_{color}_striped",
            "stripes",
            rgb,
            (0.92, 0.9, 0.85),
            rgb,
            scale=0.02,
            p=(0.5, 0.5, 1.0, 0.0),
            detail=f"{color} and white painted stripes",
        )
    else:
        glaze = Material(
            f"glaze_{color}_text",
            "text",
            (0.92, 0.9, 0.86),
            rgb,
            rgb,
            scale=0.006,
            p=(1.8, 0.0, 0.03, 0.07, 0.25),
            seed=7.0,
            detail=f"{color} lettering printed on a white mug",
        )
    body = b.node(mug, "body", "the curved side of a mug")
    r, h = rng.uniform(0.038, 0.045), rng.uniform(0.085, 0.1)
    b.add(body, M.lathe([r * 0.92, r, r, r * 0.95], [0, 0.01, h - 0.01, h], 20).placed(pos), glaze)
    handle = M.torus_arc(0.028, 0.007, 360, 12, 6).transformed(
        M.pose(np.asarray(pos) + np.array([r + 0.012, 0, h * 0.55]), 0, 0, 90)
    )
    b.add(body, handle, glaze)
    b.detail(body, glaze, via="glazed ceramic")
    return mug


FRUITS = {
    "apple": ((0.6, 0.08, 0.07), (0.75, 0.55, 0.15), (0.9, 0.85, 0.6), 0.04, (1.0, 0.95, 0.9)),
    "orange": ((0.92, 0.5, 0.08), (0.85, 0.42, 0.05), (0.98, 0.7, 0.3), 0.042, (1.0, 1.0, 1.0)),
    "lemon": ((0.93, 0.82, 0.2), (0.85, 0.72, 0.12), (0.98, 0.92, 0.5), 0.035, (1.0, 1.0, 1.35)),
    "plum": ((0.32, 0.1, 0.3), (0.2, 0.05, 0.22), (0.55, 0.45, 0.6), 0.028, (1.0, 1.0, 1.1)),
}


def add_fruit_bowl(b: WorldBuilder, parent: SceneNode, pos, rng) -> SceneNode:
    """Bowl with a pile of fruit."""
    bowl = b.node(parent, "bowl", "a bowl of fruit", salience=0.8 + rng.random())
    pos = np.asarray(pos, float)
    color, rgb = P.pick(rng, P.PAINTS)
    glaze = Material(
        f"bowl_{color}",
        "noise",
        rgb,
        tuple(0.8 * x for x in rgb),
        (0.95, 0.95, 0.9),
        scale=0.04,
        p=(0.8, 0.03),
        detail=f"speckled {color} glaze",
    )
    dish = b.node(bowl, "dish", f"a {color} ceramic bowl", salience=0.3)
    b.add(dish, M.lathe([0.05, 0.1, 0.13, 0.135], [0, 0.03, 0.07, 0.075], 24).placed(pos), glaze)
    b.detail(dish, glaze, via="the rim of a bowl")
    for i in range(int(rng.integers(3, 6))):
        name = list(FRUITS)[int(rng.integers(len(FRUITS)))]
        skin, skin2, spot, r, stretch = FRUITS[name]
        mat = Material(
            f"fruit_{name}",
            "noise",
            skin,
            skin2,
            spot,
            scale=0.02,
            p=(1.4, 0.08),
            detail=f"pores on the skin of an {name}"
            if name[0] in "aeiou"
            else f"pores on the skin of a {name}",
        )
        fruit = b.node(
            bowl,
            f"fruit_{i}",
            f"{'an' if name[0] in 'aeiou' else 'a'} {name}",
            salience=1.0 + rng.random(),
        )
        ang = rng.uniform(0, 2 * np.pi)
        rr = 0.0 if i == 0 else 0.06
        lift = 0.07 + r * 0.8 + (0.03 if i == 0 else 0)
        c = pos + np.array([rr * np.cos(ang), rr * np.sin(ang), lift])
        s = np.array(stretch)
        bump = lambda d, s=s: 1.0 / np.linalg.norm(d / s, axis=1)  # noqa: E731
        b.add(fruit, M.sphere(r, 8, 14, bump).placed(c, rng.uniform(0, 360)), mat)
        skin_node = b.node(fruit, "skin", f"the skin of the {name}", geometry=False)
        b.detail(skin_node, mat)
    return bowl


def add_book_stack(b: WorldBuilder, parent: SceneNode, pos, rng, yaw: float) -> SceneNode:
    """Stack of 2-4 books lying flat, spines facing a common side."""
    stack = b.node(parent, "books", "a stack of books", salience=1.5 + rng.random())
    z = 0.0
    for _ in range(int(rng.integers(2, 5))):
        t, d, h = rng.uniform(0.02, 0.045), rng.uniform(0.15, 0.22), rng.uniform(0.2, 0.28)
        lying = M.pose([h / 2, 0, 0], 0, -90, 0)
        T = M.pose(np.asarray(pos) + np.array([0, 0, z + t / 2]), yaw + rng.uniform(-8, 8)) @ lying
        add_book(b, stack, (t, d, h), T, rng, level=parent.level + 2)
        z += t
    return stack
