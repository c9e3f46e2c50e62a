"""Camera-path templates: OpenCV ``c2w`` ``[N, 4, 4]`` float64 numpy, world z up.

Each template builds a few keyframes and interpolates them with
``models.geometry.interpolate_poses`` (SLERP rotations, C1 Hermite positions), so paths are
smooth. ``forward`` arguments are viewing directions; cameras never roll (their x axis stays
horizontal).
"""

from __future__ import annotations

import numpy as np
import torch

from models.geometry import interpolate_poses, look_at

UP = np.array([0.0, 0.0, 1.0])


def look_pose(eye, target) -> np.ndarray:
    """``c2w`` ``[4, 4]`` at ``eye`` looking at ``target`` (no roll)."""
    return look_many(np.asarray(eye, float)[None], np.asarray(target, float)[None])[0]


def look_many(eyes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``c2w`` ``[N, 4, 4]`` for ``eyes`` ``[N, 3]`` looking at ``targets`` ``[N, 3]``."""
    e = torch.as_tensor(np.asarray(eyes, float))
    t = torch.as_tensor(np.asarray(targets, float))
    up = torch.tensor(UP).expand_as(e)
    return look_at(e, t, up).numpy()


def direction(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """Unit viewing direction from yaw (about +z, 0 = +x) and pitch (up positive)."""
    y, p = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    return np.array([np.cos(p) * np.cos(y), np.cos(p) * np.sin(y), np.sin(p)])


def yaw_pitch(forward) -> tuple[float, float]:
    """Inverse of ``direction``: (yaw, pitch) in degrees."""
    f = np.asarray(forward, float) / np.linalg.norm(forward)
    return float(np.degrees(np.arctan2(f[1], f[0]))), float(np.degrees(np.arcsin(f[2])))


def smooth_path(keys: np.ndarray, n: int, ease: bool = False) -> np.ndarray:
    """``n`` poses through keyframes ``[K, 4, 4]`` spread uniformly (optionally eased in/out)."""
    k = keys.shape[0]
    times = np.linspace(0.0, 1.0, n)
    if ease:
        times = times * times * (3 - 2 * times)
    out = interpolate_poses(
        torch.as_tensor(keys, dtype=torch.float64),
        torch.linspace(0.0, 1.0, k, dtype=torch.float64),
        torch.as_tensor(times, dtype=torch.float64),
    )
    return out.numpy()


def forward_dolly(eye, forward, distance: float, n: int) -> np.ndarray:
    """Move ``distance`` metres along the horizontal part of ``forward``, looking ahead."""
    f = np.asarray(forward, float)
    flat = f * [1, 1, 0]
    flat /= np.linalg.norm(flat)
    eyes = np.asarray(eye, float) + np.linspace(0, distance, n)[:, None] * flat
    return look_many(eyes, eyes + f)


def truck(eye, forward, distance: float, n: int) -> np.ndarray:
    """Slide ``distance`` metres sideways (positive = camera right), keeping the view direction."""
    f = np.asarray(forward, float)
    right = np.cross(f, UP)
    right /= np.linalg.norm(right)
    eyes = np.asarray(eye, float) + np.linspace(0, distance, n)[:, None] * right
    return look_many(eyes, eyes + f)


def pan(eye, forward, yaw_deg: float, n: int) -> np.ndarray:
    """Turn in place by ``yaw_deg`` (positive = counter-clockwise seen from above)."""
    y0, p0 = yaw_pitch(forward)
    yaws = y0 + np.linspace(0, yaw_deg, n)
    eyes = np.repeat(np.asarray(eye, float)[None], n, 0)
    return look_many(eyes, eyes + np.stack([direction(y, p0) for y in yaws]))


def turn_360(eye, forward, n: int) -> np.ndarray:
    """A full turn in place: ``n`` evenly spaced headings, the last one short of the first."""
    return pan(eye, forward, 360.0 * (n - 1) / n, n)


def orbit(center, eye, arc_deg: float, n: int, target=None) -> np.ndarray:
    """Circle ``center`` (vertical axis) from ``eye`` through ``arc_deg``, looking at ``target``
    (default: ``center``)."""
    c = np.asarray(center, float)
    e = np.asarray(eye, float)
    rel = e - c
    radius, a0 = np.hypot(rel[0], rel[1]), np.arctan2(rel[1], rel[0])
    ang = a0 + np.deg2rad(np.linspace(0, arc_deg, n))
    eyes = np.stack([c[0] + radius * np.cos(ang), c[1] + radius * np.sin(ang), np.full(n, e[2])], 1)
    tgt = c if target is None else np.asarray(target, float)
    return look_many(eyes, np.repeat(tgt[None], n, 0))


def zoom_in(eye, target, end_distance: float, n: int) -> np.ndarray:
    """Dolly from ``eye`` towards ``target`` until ``end_distance`` from it, eased in and out."""
    e, t = np.asarray(eye, float), np.asarray(target, float)
    d = t - e
    dist = np.linalg.norm(d)
    s = np.linspace(0.0, 1.0, n)
    s = s * s * (3 - 2 * s)
    travel = max(dist - end_distance, 0.0)
    eyes = e + (s * travel)[:, None] * (d / dist)
    return look_many(eyes, np.repeat(t[None], n, 0))


def random_motion(
    rng: np.random.Generator,
    eye,
    forward,
    n: int,
    max_speed: float,
    max_turn_deg: float,
    key_every: int = 6,
) -> np.ndarray:
    """Stochastic smooth walk: random keyframes every ``key_every`` frames, with per-frame speed
    below ``max_speed`` (m/frame) and turn rate below ``max_turn_deg`` (deg/frame)."""
    n_keys = max(2, int(np.ceil((n - 1) / key_every)) + 1)
    yaw, pitch = yaw_pitch(forward)
    pos = np.asarray(eye, float)
    eyes, dirs = [pos.copy()], [direction(yaw, pitch)]
    for _ in range(n_keys - 1):
        yaw += rng.uniform(-0.6, 0.6) * max_turn_deg * key_every
        pitch = float(np.clip(pitch + rng.uniform(-0.3, 0.3) * max_turn_deg * key_every, -20, 15))
        heading = direction(yaw + rng.uniform(-25, 25), 0.0)
        pos = pos + heading * rng.uniform(0.3, 0.6) * max_speed * key_every
        pos[2] += rng.uniform(-0.1, 0.1) * max_speed * key_every
        eyes.append(pos.copy())
        dirs.append(direction(yaw, pitch))
    keys = look_many(np.array(eyes), np.array(eyes) + np.array(dirs))
    path = smooth_path(keys, (n_keys - 1) * key_every + 1)[:n]
    return look_many(path[:, :3, 3], path[:, :3, 3] + path[:, :3, 2])  # SLERP adds tiny roll


def motion_stats(c2w: np.ndarray) -> dict[str, float]:
    """Largest per-frame translation (m) and rotation (deg) along a path ``[N, 4, 4]``."""
    if len(c2w) < 2:
        return {"max_step_m": 0.0, "max_turn_deg": 0.0}
    step = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1)
    R = c2w[:-1, :3, :3].transpose(0, 2, 1) @ c2w[1:, :3, :3]
    cos = np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1)
    return {
        "max_step_m": float(step.max()),
        "max_turn_deg": float(np.degrees(np.arccos(cos)).max()),
    }


TEMPLATES = ("forward_dolly", "orbit", "pan", "truck", "zoom_in", "turn_360", "random")
