"""Mesh primitives as plain numpy arrays, and the builder that merges them into one world mesh.

Every primitive is a ``Part`` in its own object frame, in metres: ``vertices`` ``[V, 3]``,
``triangles`` ``[T, 3]`` (counter-clockwise seen from outside, so geometric normals point out),
shading ``normals`` ``[V, 3]``, surface coordinates ``uv`` ``[V, 2]`` in metres (``v`` runs up on
side faces) and ``local`` ``[V, 3]`` object-frame coordinates for solid textures. Placing a part
moves vertices and normals; ``uv`` and ``local`` stay, so textures stick to the object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Part:
    """One mesh piece (see the module docstring for the arrays)."""

    vertices: np.ndarray
    triangles: np.ndarray
    normals: np.ndarray
    uv: np.ndarray
    local: np.ndarray

    def transformed(self, T: np.ndarray) -> Part:
        """The part moved by the rigid (or uniformly scaled) transform ``T`` ``[4, 4]``."""
        R, t = T[:3, :3], T[:3, 3]
        n = self.normals @ R.T
        n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
        return Part(self.vertices @ R.T + t, self.triangles, n, self.uv, self.local)

    def placed(self, position, yaw_deg: float = 0.0) -> Part:
        """The part turned by ``yaw_deg`` about +z and moved to ``position`` ``[3]``."""
        return self.transformed(pose(position, yaw_deg))


def pose(position, yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0):
    """``[4, 4]`` transform: rotate about x (roll), y (pitch), then z (yaw), then translate."""
    a, b, c = np.deg2rad([roll_deg, pitch_deg, yaw_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = rz @ ry @ rx
    T[:3, 3] = position
    return T


def frame_pose(origin, x_axis, z_axis) -> np.ndarray:
    """``[4, 4]`` transform whose local x and z axes map to the given world directions."""
    z = np.asarray(z_axis, float) / np.linalg.norm(z_axis)
    x = np.asarray(x_axis, float) - z * np.dot(x_axis, z)
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    T[:3, 3] = origin
    return T


def box(size, center=(0.0, 0.0, 0.0)) -> Part:
    """Axis-aligned box of ``size`` ``[3]`` around ``center``; flat faces, 24 vertices."""
    s = np.asarray(size, float) / 2
    c = np.asarray(center, float)
    verts, tris, normals, uvs = [], [], [], []
    for axis in range(3):
        u_ax, v_ax = [a for a in range(3) if a != axis]
        if axis != 2:  # side faces: u horizontal, v = z
            u_ax, v_ax = (1 - axis, 2)
        for sign in (-1.0, 1.0):
            n = np.zeros(3)
            n[axis] = sign
            corners = []
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis] = sign * s[axis]
                p[u_ax], p[v_ax] = du * s[u_ax], dv * s[v_ax]
                corners.append(p)
            corners = np.array(corners)
            base = len(verts) * 4
            quad = np.array([[0, 1, 2], [0, 2, 3]])
            e1, e2 = corners[1] - corners[0], corners[2] - corners[0]
            if np.dot(np.cross(e1, e2), n) < 0:
                quad = quad[:, ::-1]
            verts.append(corners)
            tris.append(quad + base)
            normals.append(np.repeat(n[None], 4, 0))
            uvs.append(np.stack([corners[:, u_ax] + s[u_ax], corners[:, v_ax] + s[v_ax]], 1))
    v = np.concatenate(verts)
    return Part(v + c, np.concatenate(tris), np.concatenate(normals), np.concatenate(uvs), v + s)


def grid_surface(points: np.ndarray, uv: np.ndarray, outward: np.ndarray | None = None) -> Part:
    """Triangulate a ``[nu, nv, 3]`` grid of points with ``uv`` ``[nu, nv, 2]``.

    Shading normals come from grid differences. ``outward`` ``[3]`` (a point inside the solid)
    orients them away from it; otherwise their side follows the grid order.
    """
    nu, nv = points.shape[:2]
    du = np.gradient(points, axis=0)
    dv = np.gradient(points, axis=1)
    n = np.cross(du, dv)
    idx = np.arange(nu * nv).reshape(nu, nv)
    a, b = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()
    c, d = idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    tris = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    verts = points.reshape(-1, 3)
    n = n.reshape(-1, 3)
    if outward is not None:
        flip = np.einsum("ij,ij->i", n, verts - outward) < 0
        n[flip] *= -1
    bad = np.linalg.norm(n, axis=1) < 1e-12
    n[bad] = verts[bad] - (outward if outward is not None else 0)
    n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
    part = Part(verts, tris, n, uv.reshape(-1, 2), verts.copy())
    return orient(part)


def orient(part: Part) -> Part:
    """Flip triangles whose winding disagrees with the shading normals."""
    v, t = part.vertices, part.triangles
    g = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    s = part.normals[t].sum(1)
    flip = np.einsum("ij,ij->i", g, s) < 0
    tris = t.copy()
    tris[flip] = tris[flip][:, ::-1]
    area = np.linalg.norm(g, axis=1) > 1e-14
    return Part(v, tris[area], part.normals, part.uv, part.local)


def lathe(radii, heights, segments: int = 24, cap_bottom=True, cap_top=True) -> Part:
    """Surface of revolution about +z through profile ``(radii[k], heights[k])``; closed by caps.

    ``uv``: ``u`` = arc length around (at the mean radius), ``v`` = arc length along the profile.
    """
    r = np.asarray(radii, float)
    h = np.asarray(heights, float)
    ang = np.linspace(0, 2 * np.pi, segments + 1)
    pts = np.stack(
        [
            r[None] * np.cos(ang)[:, None],
            r[None] * np.sin(ang)[:, None],
            h[None].repeat(len(ang), 0),
        ],
        -1,
    )
    prof = np.concatenate([[0], np.cumsum(np.hypot(np.diff(r), np.diff(h)))])
    uv = np.stack(np.broadcast_arrays(ang[:, None] * r.mean(), prof[None]), -1)
    parts = [_lathe_side(pts, uv, h)]
    if cap_bottom and r[0] > 1e-9:
        parts.append(disc(r[0], segments, h[0], up=False))
    if cap_top and r[-1] > 1e-9:
        parts.append(disc(r[-1], segments, h[-1], up=True))
    return merge(parts)


def _lathe_side(pts, uv, h) -> Part:
    axis_pts = np.zeros_like(pts)
    axis_pts[..., 2] = h[None]
    part = grid_surface(pts, uv)
    n = pts.reshape(-1, 3) - axis_pts.reshape(-1, 3)
    dv = np.gradient(pts, axis=1).reshape(-1, 3)
    du = np.gradient(pts, axis=0).reshape(-1, 3)
    g = np.cross(du, dv)
    g *= np.sign(np.einsum("ij,ij->i", g, n) + 1e-12)[:, None]
    g /= np.linalg.norm(g, axis=1, keepdims=True).clip(1e-12)
    return orient(Part(part.vertices, part.triangles, g, part.uv, part.local))


def disc(radius: float, segments: int, z: float, up: bool = True) -> Part:
    """Flat disc at height ``z`` facing +z (``up``) or -z; ``uv`` = ``(x, y)``."""
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([radius * np.cos(ang), radius * np.sin(ang), np.full_like(ang, z)], 1)
    verts = np.concatenate([[[0, 0, z]], ring])
    i = np.arange(segments)
    tris = np.stack([np.zeros_like(i), 1 + i, 1 + (i + 1) % segments], 1)
    n = np.zeros_like(verts)
    n[:, 2] = 1.0 if up else -1.0
    if not up:
        tris = tris[:, ::-1]
    return Part(verts, tris, n, verts[:, :2] + radius, verts.copy())


def cylinder(radius: float, height: float, segments: int = 20) -> Part:
    """Closed cylinder on the z axis from z = 0 to ``height``."""
    return lathe([radius, radius], [0.0, height], segments)


def sphere(radius: float, n_lat: int = 12, n_lon: int = 24, bump=None) -> Part:
    """UV sphere around the origin; ``bump(dirs [N, 3]) -> [N]`` scales the radius per vertex."""
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat + 1)
    lon = np.linspace(0, 2 * np.pi, n_lon + 1)
    d = np.stack(
        [
            np.cos(lat)[None] * np.cos(lon)[:, None],
            np.cos(lat)[None] * np.sin(lon)[:, None],
            np.sin(lat)[None].repeat(len(lon), 0),
        ],
        -1,
    )
    r = radius if bump is None else radius * bump(d.reshape(-1, 3)).reshape(d.shape[:2])[..., None]
    if bump is not None:  # keep the seam closed
        r[-1] = r[0]
        r[:, 0], r[:, -1] = r[:, 0].mean(), r[:, -1].mean()
    pts = d * r
    uv = np.stack(np.broadcast_arrays(lon[:, None] * radius, lat[None] * radius), -1)
    return grid_surface(pts, uv, outward=np.zeros(3))


def heightfield(xs: np.ndarray, ys: np.ndarray, z: np.ndarray) -> Part:
    """Terrain over the grid ``xs`` ``[nx]`` × ``ys`` ``[ny]`` with heights ``z`` ``[nx, ny]``."""
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    pts = np.stack([X, Y, z], -1)
    part = grid_surface(pts, np.stack([X, Y], -1))
    n = part.normals
    n *= np.sign(n[:, 2:3] + 1e-12)
    return orient(Part(part.vertices, part.triangles, n, part.uv, part.local))


def polygon(points2d, z: float = 0.0) -> Part:
    """Flat convex polygon in the xy plane (fan from vertex 0), facing +z; ``uv`` = ``(x, y)``."""
    p = np.asarray(points2d, float)
    verts = np.concatenate([p, np.full((len(p), 1), z)], 1)
    i = np.arange(1, len(p) - 1)
    tris = np.stack([np.zeros_like(i), i, i + 1], 1)
    n = np.tile([0.0, 0.0, 1.0], (len(p), 1))
    return orient(Part(verts, tris, n, p.copy(), verts.copy()))


def leaf(length: float, width: float) -> Part:
    """Pointed leaf blade along +x from the stem at the origin, facing +z (one-sided)."""
    pts = [
        (0.0, 0.0),
        (0.25 * length, -0.45 * width),
        (0.6 * length, -0.5 * width),
        (length, 0.0),
        (0.6 * length, 0.5 * width),
        (0.25 * length, 0.45 * width),
    ]
    return polygon(pts)


def prism_roof(width: float, depth: float, rise: float) -> Part:
    """Gable roof: ridge along x at height ``rise`` over a ``width`` × ``depth`` base at z = 0."""
    w, d = width / 2, depth / 2
    slope = np.hypot(d, rise)
    parts = []
    for sign in (-1.0, 1.0):
        verts = np.array([[-w, sign * d, 0], [w, sign * d, 0], [w, 0, rise], [-w, 0, rise]])
        n = np.array([0.0, sign * rise, d]) / slope
        uv = np.array([[0, 0], [width, 0], [width, slope], [0, slope]], float)
        tris = np.array([[0, 1, 2], [0, 2, 3]])
        parts.append(orient(Part(verts, tris, np.tile(n, (4, 1)), uv, verts.copy())))
    for sign in (-1.0, 1.0):
        verts = np.array([[sign * w, -d, 0], [sign * w, d, 0], [sign * w, 0, rise]])
        n = np.tile([sign, 0.0, 0.0], (3, 1))
        uv = verts[:, 1:] + [d, 0]
        parts.append(orient(Part(verts, np.array([[0, 1, 2]]), n, uv, verts.copy())))
    bottom = np.array([[-w, -d, 0], [w, -d, 0], [w, d, 0], [-w, d, 0]], float)
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    parts.append(
        orient(Part(bottom, tris, np.tile([0.0, 0.0, -1.0], (4, 1)), bottom[:, :2], bottom.copy()))
    )
    return merge(parts)


def merge(parts: list[Part]) -> Part:
    """One part holding all ``parts`` (triangle indices offset)."""
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    return Part(
        np.concatenate([p.vertices for p in parts]),
        np.concatenate([p.triangles + o for p, o in zip(parts, offsets)]),
        np.concatenate([p.normals for p in parts]),
        np.concatenate([p.uv for p in parts]),
        np.concatenate([p.local for p in parts]),
    )


class MeshBuilder:
    """Accumulates parts with a material id and an instance id per part."""

    def __init__(self) -> None:
        self._parts: list[Part] = []
        self._material: list[int] = []
        self._instance: list[int] = []

    def add(self, part: Part, material: int, instance: int) -> None:
        self._parts.append(part)
        self._material.append(material)
        self._instance.append(instance)

    def build(self) -> dict[str, np.ndarray]:
        """Arrays ``vertices, normals, local`` float32 ``[V, 3]``, ``uv`` ``[V, 2]``,
        ``triangles`` int32 ``[T, 3]``, ``tri_material``, ``tri_instance`` int32 ``[T]``."""
        merged = merge(self._parts)
        counts = [len(p.triangles) for p in self._parts]
        return {
            "vertices": merged.vertices.astype(np.float32),
            "triangles": merged.triangles.astype(np.int32),
            "normals": merged.normals.astype(np.float32),
            "uv": merged.uv.astype(np.float32),
            "local": merged.local.astype(np.float32),
            "tri_material": np.repeat(self._material, counts).astype(np.int32),
            "tri_instance": np.repeat(self._instance, counts).astype(np.int32),
        }


def torus_arc(
    radius: float, tube: float, arc_deg: float = 360.0, nu: int = 16, nv: int = 8
) -> Part:
    """Torus (or an arc of ``arc_deg`` of it) around +z in the xy plane, tube radius ``tube``."""
    a = np.linspace(0, np.deg2rad(arc_deg), nu + 1)
    b = np.linspace(0, 2 * np.pi, nv + 1)
    ca, sa = np.cos(a)[:, None], np.sin(a)[:, None]
    cb, sb = np.cos(b)[None], np.sin(b)[None]
    pts = np.stack([(radius + tube * cb) * ca, (radius + tube * cb) * sa, tube * sb + 0 * ca], -1)
    centre = np.stack([radius * ca + 0 * cb, radius * sa + 0 * cb, 0 * ca + 0 * cb], -1)
    uv = np.stack(np.broadcast_arrays(a[:, None] * radius, b[None] * tube), -1)
    part = grid_surface(pts, uv)
    n = (pts - centre).reshape(-1, 3)
    n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
    return orient(Part(part.vertices, part.triangles, n, part.uv, part.local))
