"""Start poses in free, semantically valid space and trajectories that pass validity checks.

Clearance is the distance to the nearest surface (open3d ``RaycastingScene.compute_distance``),
checked at every pose and at sub-steps along each segment. A pose is inside geometry when most
probe rays from it hit back faces. A view is valid when the median depth of a grid of forward
rays exceeds ``Navigation.min_view_depth`` (no staring into a wall).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datagen.trajectories import templates as T
from datagen.worlds.world import World

_PROBES = np.array(
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
    + [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)],
    dtype=np.float64,
)
_PROBES /= np.linalg.norm(_PROBES, axis=1, keepdims=True)


def clearance(world: World, points: np.ndarray) -> np.ndarray:
    """Distance ``[N]`` from ``points`` ``[N, 3]`` to the nearest surface of the world."""
    return world.distance(points)


def inside_geometry(world: World, points: np.ndarray) -> np.ndarray:
    """Bool ``[N]``: more probe rays from the point hit back faces than front faces."""
    p = np.asarray(points, np.float64).reshape(-1, 3)
    rays = np.concatenate([np.repeat(p, len(_PROBES), 0), np.tile(_PROBES, (len(p), 1))], 1).astype(
        np.float32
    )
    hits = world.cast(rays)
    hit = np.isfinite(hits["t_hit"])
    normals = hits["primitive_normals"]
    back = (np.einsum("ij,ij->i", normals, rays[:, 3:]) > 0) & hit
    front = ~back & hit
    n = len(_PROBES)
    return back.reshape(-1, n).sum(1) > front.reshape(-1, n).sum(1)


def ground_height(world: World, xy: np.ndarray) -> np.ndarray:
    """Ground z ``[N]`` under ``xy`` ``[N, 2]``; NaN where something else is hit first."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    nav = world.nav
    if nav.ground_z is not None:
        return np.full(len(xy), float(nav.ground_z))
    top = float(world.graph.bounds[1, 2]) + 10.0
    rays = np.zeros((len(xy), 6), np.float32)
    rays[:, :2], rays[:, 2], rays[:, 5] = xy, top, -1.0
    hits = world.cast(rays)
    t = hits["t_hit"].astype(np.float64)
    prim = hits["primitive_ids"]
    inst = np.full(len(xy), -1)
    ok = np.isfinite(t)
    inst[ok] = world.arrays["tri_instance"][prim[ok]]
    z = top - t
    if nav.ground_instance is not None:
        z[inst != nav.ground_instance] = np.nan
    return np.where(ok, z, np.nan)


def forward_depths(world: World, c2w: np.ndarray, grid: int = 7, fov_deg: float = 50.0):
    """Z-depth ``[N, grid*grid]`` of a grid of rays across the central ``fov_deg`` of each pose;
    inf where a ray escapes."""
    c2w = np.asarray(c2w, np.float64).reshape(-1, 4, 4)
    s = np.tan(np.deg2rad(fov_deg) / 2)
    g = np.linspace(-s, s, grid)
    cam = np.stack(np.broadcast_arrays(g[None, :], g[:, None], 1.0), -1).reshape(-1, 3)
    dirs = np.einsum("nij,kj->nki", c2w[:, :3, :3], cam)
    orig = np.broadcast_to(c2w[:, None, :3, 3], dirs.shape)
    rays = np.concatenate([orig, dirs], -1).reshape(-1, 6).astype(np.float32)
    t = world.cast(rays)["t_hit"]
    return t.reshape(len(c2w), -1).astype(np.float64)


@dataclass
class Validity:
    """Result of ``check_poses``: ``ok`` and per-pose diagnostics ``[N]``."""

    ok: bool
    clearance: np.ndarray
    segment_clearance: float
    inside: np.ndarray
    view_depth: np.ndarray
    reasons: list[str] = field(default_factory=list)


def check_poses(
    world: World,
    c2w: np.ndarray,
    min_clearance: float | None = None,
    min_view_depth: float | None = None,
    substeps: int = 4,
) -> Validity:
    """Check a path ``[N, 4, 4]``: clearance at every pose and along segments (``substeps`` per
    segment), not inside geometry, median forward depth above ``min_view_depth`` (defaults from
    ``world.nav``)."""
    nav = world.nav
    cmin = nav.clearance if min_clearance is None else min_clearance
    vmin = nav.min_view_depth if min_view_depth is None else min_view_depth
    c2w = np.asarray(c2w, np.float64).reshape(-1, 4, 4)
    eyes = c2w[:, :3, 3]
    clear = clearance(world, eyes)
    seg = float("inf")
    if len(eyes) > 1:
        s = (np.arange(1, substeps + 1) / (substeps + 1))[None, :, None]
        mids = (eyes[:-1, None] * (1 - s) + eyes[1:, None] * s).reshape(-1, 3)
        seg = float(clearance(world, mids).min())
    inside = inside_geometry(world, eyes)
    depth = np.median(forward_depths(world, c2w), axis=1)
    reasons = []
    if (clear < cmin).any():
        reasons.append(f"clearance {clear.min():.3f} < {cmin}")
    if seg < cmin:
        reasons.append(f"segment clearance {seg:.3f} < {cmin}")
    if inside.any():
        reasons.append("inside geometry")
    if (depth < vmin).any():
        reasons.append(f"median view depth {depth.min():.3f} < {vmin}")
    return Validity(not reasons, clear, seg, inside, depth, reasons)


def sample_start(world: World, rng: np.random.Generator, tries: int = 400):
    """A free, semantically valid start: (eye ``[3]``, forward ``[3]``).

    Eyes lie in the navigation region (on the ring around the centre for tabletop worlds) at eye
    height above the ground, with 1.5× the clearance and outside geometry; the heading looks at
    the centre (ring) or into open space with a clear view.
    """
    nav = world.nav
    for _ in range(tries):
        if nav.ring is not None:
            r, a = rng.uniform(*nav.ring), rng.uniform(0, 2 * np.pi)
            xy = np.array(nav.center[:2]) + r * np.array([np.cos(a), np.sin(a)])
        else:
            xy = rng.uniform(nav.region_min, nav.region_max)
        if not (np.all(xy >= nav.region_min) and np.all(xy <= nav.region_max)):
            continue
        z0 = ground_height(world, xy[None])[0]
        if not np.isfinite(z0):
            continue
        eye = np.array([xy[0], xy[1], z0 + rng.uniform(*nav.eye_height)])
        if clearance(world, eye[None])[0] < 1.5 * nav.clearance:
            continue
        if inside_geometry(world, eye[None])[0]:
            continue
        if nav.ring is not None:
            target = np.array(nav.center) + rng.normal(0, 0.08, 3)
            forward = target - eye
        else:
            forward = _open_heading(world, eye, rng)
            if forward is None:
                continue
        forward = forward / np.linalg.norm(forward)
        if (
            np.median(forward_depths(world, T.look_pose(eye, eye + forward)[None]))
            < nav.min_view_depth
        ):
            continue
        return eye, forward
    raise RuntimeError(f"world {world.id}: no valid start pose in {tries} tries")


def _open_heading(world: World, eye: np.ndarray, rng) -> np.ndarray | None:
    yaws = np.arange(0, 360, 22.5) + rng.uniform(0, 22.5)
    pitch = rng.uniform(-12, 4)
    dirs = np.stack([T.direction(y, pitch) for y in yaws])
    rays = np.concatenate([np.repeat(eye[None], len(dirs), 0), dirs], 1).astype(np.float32)
    t = np.minimum(world.cast(rays)["t_hit"], 50.0)
    good = t > 2.5 * world.nav.min_view_depth
    if not good.any():
        return None
    w = np.where(good, t, 0.0)
    return dirs[rng.choice(len(dirs), p=w / w.sum())]


@dataclass
class Trajectory:
    """A sampled path: ``c2w`` ``[N, 4, 4]`` float64, the template and its parameters."""

    c2w: np.ndarray
    template: str
    params: dict[str, Any]
    validity: Validity


def _focus_targets(world: World) -> list[np.ndarray]:
    out = []
    for node in world.graph.walk():
        if 1 <= node.level <= 3 and node.bounds is not None and node.instance:
            size = np.linalg.norm(node.bounds[1] - node.bounds[0])
            if 0.05 < size < 12.0:
                out.append(node.bounds.mean(0))
    return out


def _build(world: World, template: str, n: int, rng, eye, forward) -> tuple[np.ndarray, dict]:
    nav = world.nav
    scale = 1.0 if nav.ring is None else 0.35
    if template == "forward_dolly":
        d = float(rng.uniform(0.5, 1.5) * scale * (3 if nav.ground_z is None else 1))
        return T.forward_dolly(eye, forward, d, n), {"distance": d}
    if template == "truck":
        d = float(rng.choice([-1, 1]) * rng.uniform(0.5, 1.2) * scale)
        return T.truck(eye, forward, d, n), {"distance": d}
    if template == "pan":
        yaw = float(rng.choice([-1, 1]) * rng.uniform(30, 90))
        return T.pan(eye, forward, yaw, n), {"yaw_deg": yaw}
    if template == "turn_360":
        return T.turn_360(eye, forward, n), {}
    if template == "orbit":
        if nav.ring is not None:
            center = np.array(nav.center)
        else:
            targets = _focus_targets(world)
            center = targets[rng.integers(len(targets))] if targets else eye + 3 * forward
        arc = float(rng.choice([-1, 1]) * rng.uniform(30, 90))
        return T.orbit(center, eye, arc, n), {"center": center.tolist(), "arc_deg": arc}
    if template == "zoom_in":
        targets = _focus_targets(world)
        if nav.ring is not None:
            targets = [t for t in targets if np.linalg.norm(t[:2] - nav.center[:2]) < 1.2]
        target = targets[rng.integers(len(targets))] if targets else eye + 3 * forward
        end = max(2.0 * nav.clearance, 1.3 * nav.min_view_depth)
        return T.zoom_in(eye, target, end, n), {"target": target.tolist(), "end_distance": end}
    if template == "random":
        speed = 0.05 if nav.ring is None else 0.02
        if nav.ground_z is None:
            speed = 0.15
        path = T.random_motion(rng, eye, forward, n, max_speed=speed, max_turn_deg=3.0)
        return path, {"max_speed": speed, "max_turn_deg": 3.0}
    raise ValueError(f"unknown template {template!r}; expected one of {T.TEMPLATES}")


def sample_trajectory(
    world: World,
    n_frames: int,
    rng: np.random.Generator,
    template: str | None = None,
    tries: int = 60,
) -> Trajectory:
    """A valid ``n_frames`` path of ``template`` (random template when None) in ``world``.

    Draws start poses and template parameters until ``check_poses`` passes; raises RuntimeError
    after ``tries`` attempts.
    """
    last = []
    for _ in range(tries):
        name = template or str(rng.choice(T.TEMPLATES))
        eye, forward = sample_start(world, rng)
        c2w, params = _build(world, name, n_frames, rng, eye, forward)
        v = check_poses(world, c2w)
        if v.ok:
            return Trajectory(c2w, name, params, v)
        last = v.reasons
    raise RuntimeError(f"world {world.id}: no valid {template or 'random'} path ({last})")
