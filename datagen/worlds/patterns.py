"""Procedural surface patterns, one function per material kind (torch, vectorised over hits).

Each pattern maps a ``Surface`` (the hits of one kind) to sRGB albedo ``[n, 3]`` in [0, 1].
Patterns are multi-scale: coarse structure (bricks, planks, stripes) carries finer structure
(cracks, grain, weave, glyphs, veins) that resolves only when a pixel is small enough; below
that, ``footprint`` fades detail to its mean so distant surfaces do not alias.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from datagen.worlds.noise import fbm, hash2, line_coverage, noise2, noise3, smoothstep
from datagen.worlds.ops import put, take, where_idx

PARAM_COLUMNS = {"a": (0, 3), "b": (3, 6), "c": (6, 9), "scale": (9, 10)}
PARAM_COLUMNS.update({f"p{i}": (10 + i, 11 + i) for i in range(5)})
PARAM_COLUMNS["seed"] = (15, 16)


class Surface:
    """Hits of one material kind, taken lazily from the frame's per-hit arrays ``fields``.

    ``rows`` selects them: a slice (hits sorted by kind: free views) or an index tensor;
    ``material`` ``[n]`` are their material ids and ``columns`` the material table by parameter
    (``"a"`` ``[M, 3]``, ``"scale"`` ``[M]``, ...). Hits of a single material get their
    parameters as broadcast views instead of gathers.
    Fields: ``uv`` ``[n, 2]`` and ``local`` ``[n, 3]`` (metres, object frame), world ``pos`` and
    shading ``normal`` ``[n, 3]``, ``fp`` ``[n]`` metres per pixel; parameters ``a``, ``b``, ``c``
    (colours ``[n, 3]``), ``scale``, ``p(i)``, ``seed`` (``[n]``).
    """

    def __init__(
        self,
        rows: slice | Tensor,
        material: Tensor,
        columns: dict[str, Tensor],
        fields: dict[str, Tensor],
    ) -> None:
        self.rows, self.material, self._columns, self._fields = rows, material, columns, fields
        self.n = material.shape[0]
        self._single = None
        if self.n:
            lo, hi = torch.aminmax(material)
            self._single = int(lo) if int(lo) == int(hi) else None
        self._cache: dict[str, Tensor] = {}
        self.fp = self._select(fields["fp"])

    def _select(self, x: Tensor) -> Tensor:
        return x[self.rows] if isinstance(self.rows, slice) else take(x, self.rows)

    def sub(self, rows: Tensor) -> Surface:
        """The surface restricted to ``rows`` (indices into this surface)."""
        if isinstance(self.rows, slice):
            glob = rows + self.rows.start
        else:
            glob = take(self.rows, rows)
        return Surface(glob, take(self.material, rows), self._columns, self._fields)

    def _get(self, name: str) -> Tensor:
        if name not in self._cache:
            if name in self._fields:
                self._cache[name] = self._select(self._fields[name])
            else:
                col = self._columns[name]
                if self._single is not None:
                    row = col[self._single]
                    self._cache[name] = row.expand(self.n, *row.shape)
                else:
                    self._cache[name] = take(col, self.material)
        return self._cache[name]

    @property
    def uv(self) -> Tensor:
        return self._get("uv")

    @property
    def local(self) -> Tensor:
        return self._get("local")

    @property
    def pos(self) -> Tensor:
        return self._get("pos")

    @property
    def normal(self) -> Tensor:
        return self._get("normal")

    @property
    def a(self) -> Tensor:
        return self._get("a")

    @property
    def b(self) -> Tensor:
        return self._get("b")

    @property
    def c(self) -> Tensor:
        return self._get("c")

    @property
    def scale(self) -> Tensor:
        return self._get("scale")

    def p(self, i: int) -> Tensor:
        return self._get(f"p{i}")

    @property
    def seed(self) -> Tensor:
        return self._get("seed")


def detail(s: Surface, mask: Tensor) -> tuple[Surface, Tensor | None]:
    """The rows of ``s`` where fine detail shows: a sub-surface and its row indices, or ``s``
    itself and None when most rows qualify (then computing on all rows is cheaper than gathering;
    callers use this only for detail whose weight is already 0 outside ``mask``)."""
    rows = where_idx(mask)
    if rows.numel() > 0.6 * s.n:
        return s, None
    return (s.sub(rows) if rows.numel() else s), rows


def merge(col: Tensor, rows: Tensor | None, value: Tensor) -> Tensor:
    """``value`` computed by ``detail`` rows written back into ``col``."""
    if rows is None:
        return value
    return put(col, rows, value) if rows.numel() else col


def pick(x: Tensor, rows: Tensor | None) -> Tensor:
    """``x`` at ``detail`` rows."""
    return x if rows is None else take(x, rows)


def near(fp: Tensor, limit: Tensor | float) -> Tensor:
    """Row indices where the pixel footprint ``fp`` is below ``limit`` (fine detail visible)."""
    return where_idx(fp < limit)


def mix(x: Tensor, y: Tensor, t: Tensor) -> Tensor:
    """Per-row blend ``x + (y - x) * t`` for colours ``[n, 3]`` and weights ``[n]``."""
    return x + (y - x) * t[:, None]


def _offset(s: Surface, k: float = 1.0) -> Tensor:
    return (s.seed * 13.7 * k)[:, None]


def _darken_lines(col: Tensor, idx: Tensor, cover: Tensor, strength: float) -> Tensor:
    """``col`` with rows ``idx`` darkened by ``strength * cover``."""
    if idx.numel():
        put(col, idx, take(col, idx) * (1 - strength * cover)[:, None])
    return col


def plain(s: Surface) -> Tensor:
    """Flat colour with faint mottling (plastic, metal, ceramic)."""
    t = fbm(s.uv / s.scale[:, None] + _offset(s), 3, s.fp / s.scale)
    return s.a * (0.9 + 0.2 * t)[:, None]


def noise(s: Surface) -> Tensor:
    """fbm blend of a and b (contrast p0), speckles of c (fraction p1): plaster, fruit, cloth."""
    sc = s.scale
    t = fbm(s.uv / sc[:, None] + _offset(s), 4, s.fp / sc)
    t = (0.5 + (t - 0.5) * s.p(0)).clamp_(0, 1)
    col = mix(s.a, s.b, t)
    d, rows = detail(s, s.fp < 0.1 * sc)
    if rows is None or rows.numel():
        fine = noise2(d.uv / (0.08 * d.scale[:, None]) + _offset(d, 2))
        lim = 1 - d.p(1)
        spot = smoothstep(lim, lim + 0.04, fine) * smoothstep(0.1 * d.scale, 0.03 * d.scale, d.fp)
        col = merge(col, rows, mix(pick(col, rows), d.c, spot))
    return col


def stone(s: Surface) -> Tensor:
    """Rock: grey fbm, dark cracks (width p0) and lichen patches of c (amount p1), in 3D."""
    sc = s.scale[:, None]
    q = s.local / sc + _offset(s)
    t = fbm(q, 4, s.fp / s.scale)
    col = mix(s.a, s.b, ((t - 0.5) * 2.5 + 0.5).clamp(0, 1))
    ridge = (noise3(q * 0.7 + 5.1) - 0.5).abs() / (0.7 * 1.6)
    col = col * (1 - 0.65 * line_coverage(ridge * s.scale, s.p(0), s.fp))[:, None]
    lim = 0.8 - 0.2 * s.p(1)
    lichen = smoothstep(lim, lim + 0.04, noise3(q * 1.7 + 9.3))
    i = where_idx(lichen > 0)
    if i.numel():
        d = s.sub(i)
        grain = fbm(d.uv / (0.02 * d.scale[:, None]) + _offset(d), 2, d.fp / 0.02)
        put(col, i, mix(take(col, i), d.c * (0.7 + 0.6 * grain)[:, None], take(lichen, i) * 0.85))
    return col


def bricks(s: Surface) -> Tensor:
    """Running-bond bricks (width scale, height p0, mortar p1) with cracked bricks (rate p2)."""
    w, h, m = s.scale, s.p(0), s.p(1)
    u, v = s.uv[:, 0], s.uv[:, 1]
    row = torch.floor(v / (h + m))
    u2 = u + torch.remainder(row, 2) * 0.5 * (w + m)
    col = torch.floor(u2 / (w + m))
    fu, fv = u2 - col * (w + m), v - row * (h + m)
    inside = torch.minimum(torch.minimum(fu, w - fu), torch.minimum(fv, h - fv))
    brick = smoothstep(-0.5 * s.fp, 0.5 * s.fp, inside)
    seed = s.seed.long()
    h1, h2 = hash2(col, row, seed), hash2(col, row, seed + 1)
    tint = s.a * (0.72 + 0.5 * h1)[:, None]
    tint = mix(tint, s.c, smoothstep(0.78, 0.95, h2) * 0.8)
    sand = fbm(s.uv / (0.15 * w[:, None]) + _offset(s), 5, s.fp / (0.15 * w))
    edge = smoothstep(0.0, 0.08 * h, inside)
    tint = tint * ((0.8 + 0.4 * sand) * (0.8 + 0.2 * edge))[:, None]
    i = where_idx((hash2(col, row, seed + 2) < s.p(2)) & (s.fp < 0.004) & (inside > 0))
    if i.numel():
        d = s.sub(i)
        cell = (take(col, i) * 7.1 + take(row, i) * 3.3)[:, None]
        wander = noise2(d.uv / (0.15 * d.scale[:, None]) + cell)
        dist = (wander - 0.5).abs() * 0.15 * d.scale / 1.5
        crack = line_coverage(dist, 0.0006, d.fp) * smoothstep(0.002, 0.006, take(inside, i))
        tint = _darken_lines(tint, i, crack, 0.75)
    mortar = s.b * (0.85 + 0.3 * sand)[:, None]
    return mix(mortar, tint, brick)


def _grain(x: Tensor, r: Tensor, a: Tensor, b: Tensor, rings: Tensor, fp: Tensor) -> Tensor:
    """Wood along x at ring radius r (m): growth rings (per metre ``rings``) and fibre streaks."""
    warp = noise2(torch.stack([x * 1.5, r * 8.0], 1))
    phase = r * rings + warp * 1.2
    ring = smoothstep(0.55, 0.95, torch.remainder(phase, 1.0))
    ring = torch.lerp(ring, torch.full_like(ring, 0.25), smoothstep(0.12, 0.45, fp * rings))
    fibre = fbm(torch.stack([x * 6.0, r * 300.0], 1), 3, fp * 300.0)
    t = 0.6 * ring + 0.45 * (fibre - 0.5) + 0.5 * (warp - 0.5) + 0.2
    return mix(a, b, t.clamp(0, 1))


def wood(s: Surface) -> Tensor:
    """Solid wood with grain along local x; ring spacing ``scale`` metres."""
    y0 = 0.3 + s.seed * 0.37 % 0.5
    r = torch.sqrt((s.local[:, 1] + y0) ** 2 + (s.local[:, 2] * 1.3 + 0.2) ** 2)
    return _grain(s.local[:, 0] + s.seed, r, s.a, s.b, 1.0 / s.scale, s.fp)


def planks(s: Surface) -> Tensor:
    """Floorboards along u (width p0, length p1), each with its own tint and grain; ring spacing
    ``scale``."""
    width, length = s.p(0), s.p(1)
    u, v = s.uv[:, 0], s.uv[:, 1]
    row = torch.floor(v / width)
    seed = s.seed.long()
    u2 = u + hash2(row, row * 0, seed) * length
    col = torch.floor(u2 / length)
    fu, fv = u2 - col * length, v - row * width
    hp = hash2(col, row, seed + 5)
    a = s.a * (0.8 + 0.35 * hp)[:, None]
    b = s.b * (0.85 + 0.3 * hash2(col, row, seed + 6))[:, None]
    out = _grain(fu + hp * 10.0, fv + 0.2 + hp * 0.6, a, b, 1.0 / s.scale, s.fp)
    gap = torch.minimum(torch.minimum(fu, length - fu), torch.minimum(fv, width - fv))
    return out * (1 - 0.7 * line_coverage(gap, 0.0012, s.fp))[:, None]


def paint(s: Surface) -> Tensor:
    """Peeling paint a over weathered wood b; chips (cover p0) with dark rims c, fine craquelure."""
    sc = s.scale
    chip = fbm(s.uv / sc[:, None] + _offset(s), 7, s.fp / sc)
    cover = s.p(0)
    painted = smoothstep(cover + 0.01, cover - 0.01, chip)
    rim = smoothstep(cover - 0.035, cover, chip) * painted
    paint_col = s.a * (0.92 + 0.16 * (chip - 0.5))[:, None]
    paint_col = mix(paint_col, s.c, rim * 0.85)
    out = paint_col.clone()
    bare = where_idx(painted < 0.999)
    if bare.numel():
        d = s.sub(bare)
        u, v = d.uv[:, 0], d.uv[:, 1]
        rings = torch.full_like(u, 400.0)
        wood_col = _grain(u, v + 0.3, d.b, d.b * 0.55, rings, d.fp)
        put(out, bare, mix(wood_col, take(paint_col, bare), take(painted, bare)))
    i = where_idx((s.fp < 0.0004) & (painted > 0))
    if i.numel():
        d = s.sub(i)
        cells = noise2(d.uv / 0.004 + _offset(d, 5))
        craq = line_coverage((cells - 0.5).abs() * 0.004 / 1.5, 0.00008, d.fp)
        out = _darken_lines(out, i, craq * take(painted, i), 0.45)
    return out


def stripes(s: Surface) -> Tensor:
    """Stripes of a | b | c (widths p0, p1 of the period ``scale``) across u (p2=0) or v (p2=1),
    woven threads every p3 metres."""
    u, v = s.uv[:, 0], s.uv[:, 1]
    x = torch.where(s.p(2) > 0.5, v, u)
    t = torch.remainder(x / s.scale, 1.0)
    p0, p01 = s.p(0), s.p(0) + s.p(1)
    col = torch.where((t < p0)[:, None], s.a, torch.where((t < p01)[:, None], s.b, s.c))
    stain = fbm(s.uv / 0.3 + _offset(s), 3, s.fp / 0.3)
    col = col * (0.93 + 0.14 * (stain - 0.5))[:, None]
    pitch = s.p(3).clamp_min(1e-4)
    d, rows = detail(s, s.fp < 0.6 * pitch)
    if rows is None or rows.numel():
        pi_ = pick(pitch, rows)
        two_pi = 2 * math.pi
        weave = torch.sin(two_pi * d.uv[:, 0] / pi_) * torch.sin(two_pi * d.uv[:, 1] / pi_)
        weave = weave * smoothstep(0.6 * pi_, 0.25 * pi_, d.fp)
        col = merge(col, rows, pick(col, rows) * (1 + 0.12 * weave)[:, None])
    return col


def text(s: Surface) -> Tensor:
    """Printed text: glyphs of height ``scale`` in ink b on a, line pitch p0 (in glyph heights);
    p1=1 runs text along v; printed only where the line axis lies in [p2, p3] when p3 > p2; p4 is
    the blank (word-gap) rate. The first line uses ink c."""
    h = s.scale
    along = torch.where(s.p(1) > 0.5, s.uv[:, 1], s.uv[:, 0])
    across = torch.where(s.p(1) > 0.5, s.uv[:, 0], s.uv[:, 1])
    cw, pitch = 0.62 * h, s.p(0) * h
    band = s.p(3) > s.p(2)
    in_band = ~band | ((across >= s.p(2)) & (across <= s.p(3)))
    rel = torch.where(band, across - s.p(2), across)
    col_i, line = torch.floor(along / cw), torch.floor(rel / pitch)
    seed = s.seed.long()
    blank = hash2(col_i, line, seed + 3) < s.p(4)
    gy = (rel - line * pitch - 0.5 * (pitch - h)) / h
    in_line = (gy >= 0) & (gy < 1)
    ink_area = (in_band & in_line & ~blank).float() * 0.22
    i = where_idx((s.fp < h / 5) & in_band & in_line & ~blank)
    if i.numel():
        ci, li, cwi = take(col_i, i), take(line, i), take(cw, i)
        gx = (take(along, i) - ci * cwi) / cwi
        letter = torch.floor(hash2(ci, li, take(seed, i)) * 37)
        bx, by = torch.floor(gx * 6), torch.floor(take(gy, i) * 8)
        bit = (hash2(letter * 64 + bx, by, 77) < 0.42) & (bx >= 1) & (bx <= 4)
        bit &= (by >= 1) & (by <= 6)
        fade = smoothstep(0.4, 1.2, take(s.fp, i) / (take(h, i) / 8))
        put(ink_area, i, torch.lerp(bit.float(), take(ink_area, i), fade))
    ink = torch.where((line == 0)[:, None], s.c, s.b)
    paper = s.a * (0.94 + 0.12 * (noise2(s.uv / 0.01 + _offset(s)) - 0.5))[:, None]
    return mix(paper, ink, ink_area)


def leaf(s: Surface) -> Tensor:
    """Leaf blade in leaf coordinates (u along the midrib, length ``scale``, width p0): midrib,
    lateral veins, a fine vein net, and a browned edge c."""
    L, W = s.scale, s.p(0)
    u, v = s.uv[:, 0], s.uv[:, 1]
    x = (u / L).clamp(0, 1)
    half = W * torch.where(x < 0.6, 0.5 * (x / 0.6).sqrt(), 0.5 * (1 - x) / 0.4).clamp_min(1e-4)
    tone = fbm(s.uv / (0.25 * L[:, None]) + _offset(s, 2), 3, s.fp / (0.25 * L))
    col = s.a * (0.8 + 0.4 * tone)[:, None]
    col = mix(col, s.b, (0.9 * line_coverage(v.abs(), 0.012 * W * (1.2 - x), s.fp)).clamp(0, 1))
    spacing = L / 8
    lat_d = (torch.remainder((u - v.abs() * 1.1) / spacing, 1.0) - 0.5).abs() * spacing / 1.5
    lateral = line_coverage(lat_d, 0.004 * W, s.fp) * (v.abs() < 0.9 * half).float()
    col = mix(col, s.b, 0.6 * lateral)
    i = near(s.fp, 0.004 * W)
    if i.numel():
        d = s.sub(i)
        net = (noise2(d.uv / (0.04 * d.scale[:, None]) + _offset(d)) - 0.5).abs()
        fine = line_coverage(net * 0.04 * d.scale / 1.5, 0.0015 * d.p(0), d.fp)
        put(col, i, mix(take(col, i), d.b * 0.9, 0.35 * fine))
    return mix(col, s.c, smoothstep(0.8, 1.0, v.abs() / half) * 0.6)


def foliage(s: Surface) -> Tensor:
    """Leafy canopy seen from afar: clumps of light (b) and dark (a) leaves with yellow tips c."""
    sc = s.scale[:, None]
    t = fbm(s.local / sc + _offset(s), 3, s.fp / s.scale)
    col = mix(s.a, s.b, smoothstep(0.35, 0.7, t))
    leafy = noise3(s.local / (0.1 * sc) + _offset(s, 2))
    near_w = smoothstep(0.1 * s.scale, 0.03 * s.scale, s.fp)
    col = col * (0.75 + 0.5 * leafy * near_w + 0.25 * (1 - near_w))[:, None]
    return mix(col, s.c, smoothstep(0.72, 0.8, leafy) * 0.5 * near_w)


def bark(s: Surface) -> Tensor:
    """Bark: vertical ridges (a) with dark furrows (b), stretched along v; lichen flecks c."""
    sc = s.scale[:, None]
    q = s.uv / sc * torch.tensor([3.0, 0.35], device=s.uv.device) + _offset(s)
    ridge = 1 - 2 * (fbm(q, 4, s.fp / s.scale * 3) - 0.5).abs()
    col = mix(s.b, s.a, smoothstep(0.3, 0.8, ridge))
    fleck = smoothstep(0.74, 0.78, noise2(s.uv / (0.3 * sc) + 3.3))
    return mix(col, s.c, fleck * 0.7)


def terrain(s: Surface) -> Tensor:
    """Meadow on world position: grass a with dirt b patches, rock c on slopes, grass blades and
    small flowers that resolve close up; ``scale`` is the patch size."""
    sc = s.scale
    xy = s.pos[:, :2]
    g = fbm(xy / sc[:, None] + _offset(s), 5, s.fp / sc)
    dirt = smoothstep(0.66, 0.72, g)
    rock = smoothstep(0.3, 0.45, 1 - s.normal[:, 2].abs() + 0.1 * (g - 0.5))
    grass = s.a * (0.75 + 1.0 * (g - 0.5))[:, None]
    col = mix(grass, s.b * (0.8 + 0.4 * g)[:, None], dirt)
    col = mix(col, s.c * (0.7 + 0.6 * g)[:, None], rock)
    d, rows = detail(s, s.fp < 0.03)
    if rows is None or rows.numel():
        xi = d.pos[:, :2]
        fine = smoothstep(0.03, 0.004, d.fp)
        blades = noise2(xi * torch.tensor([20.0, 120.0], device=xi.device))
        free = (1 - pick(dirt, rows)) * (1 - pick(rock, rows)) * fine
        c = pick(col, rows) * (1 + 0.5 * (blades - 0.5) * fine)[:, None]
        patch = smoothstep(0.55, 0.65, noise2(xi / 1.5 + 40.0))
        bloom = smoothstep(0.8, 0.83, noise2(xi / 0.012 + 11.0)) * patch * free
        white, yellow = c.new_tensor([0.95, 0.93, 0.85]), c.new_tensor([0.95, 0.8, 0.2])
        petal = torch.where((pick(g, rows) > 0.5)[:, None], white, yellow)
        col = merge(col, rows, mix(c, petal, bloom))
    return col


def tiles(s: Surface) -> Tensor:
    """Roof or floor tiles (width scale, height p0) in offset rows, barrel-shaded (p1 = 1),
    moss c where fbm exceeds p2."""
    w, h = s.scale, s.p(0)
    u, v = s.uv[:, 0], s.uv[:, 1]
    row = torch.floor(v / h)
    u2 = u + torch.remainder(row, 2) * 0.5 * w
    col = torch.floor(u2 / w)
    fu, fv = (u2 - col * w) / w, (v - row * h) / h
    base = s.a * (0.75 + 0.45 * hash2(col, row, s.seed.long()))[:, None]
    barrel = torch.where(s.p(1) > 0.5, 0.7 + 0.3 * torch.sin(math.pi * fu), torch.ones_like(fu))
    lip = 0.55 + 0.45 * smoothstep(0.0, 0.18, fv)
    grout = line_coverage(torch.minimum(fu, 1 - fu) * w, 0.002, s.fp)
    base = base * (barrel * lip * (1 - 0.5 * grout))[:, None]
    base = mix(base, s.b, line_coverage(fv * h, 0.003, s.fp) * 0.7)
    moss = smoothstep(s.p(2), s.p(2) + 0.05, fbm(s.uv / 0.6 + _offset(s), 5, s.fp / 0.6))
    return mix(base, s.c, moss * 0.8)


def painting(s: Surface) -> Tensor:
    """A painted landscape on canvas (uv over the canvas, size ``scale``): sky a, hills b, field c,
    brush strokes and canvas weave up close."""
    x, y = s.uv[:, 0] / s.scale, s.uv[:, 1] / s.scale
    zero = torch.zeros_like(x)
    hill = 0.45 + 0.15 * fbm(torch.stack([x * 3 + s.seed, zero], 1), 3)
    field = 0.25 + 0.08 * fbm(torch.stack([x * 5 + 7 + s.seed, zero], 1), 2)
    sky = mix(s.a, torch.full_like(s.a, 0.95), ((y - hill) * 2).clamp(0, 1))
    col = torch.where((y > hill)[:, None], sky, torch.where((y > field)[:, None], s.b, s.c))
    strokes = fbm(torch.stack([x * 40, y * 160], 1), 3, s.fp / s.scale * 160)
    col = col * (0.85 + 0.3 * strokes)[:, None]
    i = near(s.fp, 0.002)
    if i.numel():
        d = s.sub(i)
        weave = torch.sin(d.uv[:, 0] / 0.0008) * torch.sin(d.uv[:, 1] / 0.0008)
        put(col, i, take(col, i) * (1 + 0.06 * weave * smoothstep(0.002, 0.0005, d.fp))[:, None])
    return col


def glass(s: Surface) -> Tensor:
    """Window view: sky gradient b→a over v (height ``scale``) above a treeline c."""
    x, y = s.uv[:, 0], s.uv[:, 1] / s.scale
    sky = mix(s.a, s.b, y.clamp(0, 1))
    tree_h = 0.25 + 0.15 * fbm(torch.stack([x / 0.15, torch.zeros_like(x)], 1), 4)
    trees = s.c * (0.8 + 0.4 * noise2(s.uv / 0.02))[:, None]
    return torch.where((y < tree_h)[:, None], trees, sky)


PATTERNS = {
    "plain": plain,
    "noise": noise,
    "stone": stone,
    "bricks": bricks,
    "wood": wood,
    "planks": planks,
    "paint": paint,
    "stripes": stripes,
    "text": text,
    "leaf": leaf,
    "foliage": foliage,
    "bark": bark,
    "terrain": terrain,
    "tiles": tiles,
    "painting": painting,
    "glass": glass,
}
