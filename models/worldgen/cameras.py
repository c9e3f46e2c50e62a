"""Zoom cameras of a multi-scale world: zoom steps, the zoom stack's parent view, log-scale
interpolation between levels, and orbits around a target.

A zoom step by ``p`` towards the pixel ``(u, v)`` of a view makes the next level's view the
``W/p × H/p`` sub-rectangle of the current view centred at ``(u, v)`` (clamped inside the image),
magnified to ``W × H``. That is a magnification by ``p`` about the *fixed point*
``x* = (p·u − W/2) / (p − 1)`` (per axis; ``x* = u`` for the centred zoom). Two modes realise it:

* ``focal``: the camera stays, ``K`` is magnified about ``x*`` (focal ×p). Exact for every depth.
* ``dolly``: ``K`` stays, the camera centre moves towards ``X*`` (the scene point seen at ``x*``,
  at depth ``z*``) by ``1 − 1/p`` of the way. Exact for the fronto-parallel plane through ``X*``;
  other depths show parallax, as a real camera moving in does. Views keep a normal field of view,
  which is what the camera-guided video model and LaLRM were trained on (WonderZoom's zoom camera).

In both modes the view with the same pose and ``K`` shrunk by ``p`` about the image centre
(``parent_K``) shows the zoom view as its centred footprint: the zoom stack's level above.
A fractional zoom ``t ∈ [0, 1]`` between two levels magnifies by ``p^t`` (log-scale interpolation).
All functions take float tensors (float64 recommended for long zoom paths) and keep their dtype.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.geometry import axis_angle_to_matrix

ZOOM_MODES = ("dolly", "focal")


def check_zoom_mode(mode: str) -> str:
    if mode not in ZOOM_MODES:
        raise ValueError(f"zoom mode must be one of {ZOOM_MODES}, got {mode!r}")
    return mode


def fixed_point(centre: Tensor, size: tuple[int, int], p: float) -> Tensor:
    """Fixed point ``x*`` ``[2]`` (pixels) of the zoom by ``p`` that makes the sub-rectangle centred at
    ``centre`` ``[2]`` = ``(u, v)`` the next view; ``size = (H, W)``. ``centre`` is clamped so the
    sub-rectangle stays inside the image."""
    H, W = size
    half = torch.tensor([W, H], dtype=centre.dtype, device=centre.device) / (2 * p)
    full = torch.tensor([W, H], dtype=centre.dtype, device=centre.device)
    c = torch.minimum(torch.maximum(centre, half), full - half)
    return (p * c - full / 2) / (p - 1)


def magnify_K(K: Tensor, s: float | Tensor, fixed: Tensor) -> Tensor:
    """Intrinsics ``[..., 3, 3]`` magnified by ``s`` about the pixel ``fixed`` ``[..., 2]``: focal ×s,
    principal point ``s (c − x*) + x*``."""
    out = K.clone()
    s = torch.as_tensor(s, dtype=K.dtype, device=K.device)
    out[..., 0, 0] = K[..., 0, 0] * s
    out[..., 1, 1] = K[..., 1, 1] * s
    out[..., 0, 1] = K[..., 0, 1] * s
    out[..., :2, 2] = s[..., None] * (K[..., :2, 2] - fixed) + fixed
    return out


def parent_K(K: Tensor, p: float, size: tuple[int, int]) -> Tensor:
    """The zoom stack's parent view of a level: ``K`` shrunk by ``p`` about the image centre, so the
    level's view is its centred ``H/p × W/p`` footprint."""
    H, W = size
    centre = torch.tensor([W / 2, H / 2], dtype=K.dtype, device=K.device)
    return magnify_K(K, 1.0 / p, centre)


def pixel_ray_point(K: Tensor, c2w: Tensor, pixel: Tensor, depth: float | Tensor) -> Tensor:
    """World point ``[3]`` at z-depth ``depth`` on the ray through ``pixel`` ``[2]`` (continuous
    coordinates, pixel centres at +0.5)."""
    xy1 = torch.cat([pixel.to(K.dtype), torch.ones(1, dtype=K.dtype, device=K.device)])
    cam = torch.linalg.solve(K, xy1) * torch.as_tensor(depth, dtype=K.dtype, device=K.device)
    return c2w[:3, :3] @ cam + c2w[:3, 3]


def zoom_camera(
    K: Tensor, c2w: Tensor, p: float, fixed: Tensor, target: Tensor, t: float = 1.0, mode="dolly"
) -> tuple[Tensor, Tensor]:
    """Camera ``(K [3, 3], c2w [4, 4])`` zoomed by ``p^t`` about the fixed point ``fixed`` ``[2]``;
    ``target`` ``[3]`` is the scene point ``X*`` seen at the fixed point (used by ``dolly``)."""
    s = p**t
    if check_zoom_mode(mode) == "focal":
        return magnify_K(K, s, fixed), c2w.clone()
    out = c2w.clone()
    out[:3, 3] = target + (c2w[:3, 3] - target) / s
    return K.clone(), out


def zoom_path(
    K: Tensor, c2w: Tensor, p: float, fixed: Tensor, target: Tensor, zooms: Tensor, mode="dolly"
) -> tuple[Tensor, Tensor]:
    """Cameras ``K [T, 3, 3]``, ``c2w [T, 4, 4]`` at fractional zooms ``zooms [T]`` (0 = the given
    camera, 1 = one full step): log-scale interpolation of one zoom step."""
    cams = [zoom_camera(K, c2w, p, fixed, target, float(z), mode) for z in zooms]
    return torch.stack([k for k, _ in cams]), torch.stack([c for _, c in cams])


def orbit_cameras(
    c2w: Tensor, target: Tensor, num: int, max_angle_deg: float, turns: float = 1.0
) -> Tensor:
    """``c2w [num, 4, 4]`` orbiting ``target`` ``[3]`` on a small cone that starts at ``c2w``
    (frame 0 = ``c2w``): the camera and its orientation are rotated about ``target`` by yaw
    ``a·sin(2πτ)`` (about the camera's y axis) and pitch ``a·(1 − cos(2πτ))/2`` (about its x axis),
    ``τ = turns·i/(num−1)``, so ``target`` stays at the same pixel."""
    R0 = c2w[:3, :3]
    out = []
    for i in range(num):
        tau = turns * i / max(num - 1, 1)
        yaw = max_angle_deg * math.sin(2 * math.pi * tau)
        pitch = max_angle_deg * (1 - math.cos(2 * math.pi * tau)) / 2
        Ry = axis_angle_to_matrix(R0[:, 1], torch.tensor(yaw, dtype=c2w.dtype))
        Rx = axis_angle_to_matrix(R0[:, 0], torch.tensor(pitch, dtype=c2w.dtype))
        Rt = (Ry @ Rx).to(c2w)
        cam = c2w.clone()
        cam[:3, :3] = Rt @ R0
        cam[:3, 3] = target + Rt @ (c2w[:3, 3] - target)
        out.append(cam)
    return torch.stack(out)
