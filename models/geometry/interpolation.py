"""SLERP and smooth camera-path interpolation (float64 inside, input dtype out)."""

import torch
from torch import Tensor

from .cameras import make_se3
from .rotations import matrix_to_quaternion, quaternion_to_matrix


def slerp(q0: Tensor, q1: Tensor, t) -> Tensor:
    """Shortest-path spherical interpolation of unit quaternions.

    ``q0``, ``q1`` ``[..., 4]``; ``t`` scalar or ``[...]`` (broadcast), 0 -> ``q0``, 1 -> ``±q1``.
    Nearly parallel inputs fall back to normalised linear interpolation. Returns ``[..., 4]``.
    """
    dtype = q0.dtype
    a = torch.nn.functional.normalize(q0.to(torch.float64), dim=-1)
    b = torch.nn.functional.normalize(q1.to(torch.float64), dim=-1)
    t = torch.as_tensor(t, dtype=torch.float64, device=a.device)[..., None]
    dot = (a * b).sum(-1, keepdim=True)
    b = torch.where(dot < 0, -b, b)
    theta = 2 * torch.atan2((a - b).norm(dim=-1, keepdim=True), (a + b).norm(dim=-1, keepdim=True))
    sin_theta = torch.sin(theta)
    near = sin_theta < 1e-6
    safe_sin = torch.where(near, torch.ones_like(sin_theta), sin_theta)
    w0 = torch.where(near, 1 - t, torch.sin((1 - t) * theta) / safe_sin)
    w1 = torch.where(near, t, torch.sin(t * theta) / safe_sin)
    out = torch.nn.functional.normalize(w0 * a + w1 * b, dim=-1)
    return out.to(dtype)


def _hermite_tangents(p: Tensor, tk: Tensor) -> Tensor:
    """Catmull-Rom tangents ``[K, D]`` for non-uniform knots ``tk`` ``[K]`` (one-sided at ends)."""
    m = torch.empty_like(p)
    m[1:-1] = (p[2:] - p[:-2]) / (tk[2:] - tk[:-2])[:, None]
    m[0] = (p[1] - p[0]) / (tk[1] - tk[0])
    m[-1] = (p[-1] - p[-2]) / (tk[-1] - tk[-2])
    return m


def interpolate_poses(c2w_keys: Tensor, times_keys: Tensor, times: Tensor) -> Tensor:
    """Smooth camera path through keyframes.

    ``c2w_keys`` ``[K, 4, 4]`` at strictly increasing ``times_keys`` ``[K]``, queried at
    ``times`` ``[T]`` -> ``c2w`` ``[T, 4, 4]``. Rotations: SLERP between neighbouring keys.
    Positions: cubic Hermite spline with Catmull-Rom tangents (C1, passes through every key).
    Keyframe times return the key poses exactly; times outside the range hold the end poses.
    """
    dtype = c2w_keys.dtype
    keys = c2w_keys.to(torch.float64)
    tk = torch.as_tensor(times_keys, dtype=torch.float64, device=keys.device)
    tq = torch.as_tensor(times, dtype=torch.float64, device=keys.device)
    if keys.shape[0] == 1:
        return c2w_keys.expand(tq.shape[0], 4, 4).clone()
    if not bool((tk[1:] > tk[:-1]).all()):
        raise ValueError("times_keys must be strictly increasing")

    i = (torch.searchsorted(tk, tq, right=True) - 1).clamp(0, tk.shape[0] - 2)
    span = tk[i + 1] - tk[i]
    u = ((tq - tk[i]) / span).clamp(0.0, 1.0)

    R_keys = keys[:, :3, :3]
    q_keys = matrix_to_quaternion(R_keys)
    R = quaternion_to_matrix(slerp(q_keys[i], q_keys[i + 1], u))
    R = torch.where((u == 0)[:, None, None], R_keys[i], R)
    R = torch.where((u == 1)[:, None, None], R_keys[i + 1], R)

    p = keys[:, :3, 3]
    m = _hermite_tangents(p, tk)
    u1, u2, u3 = u[:, None], u[:, None] ** 2, u[:, None] ** 3
    h00 = 2 * u3 - 3 * u2 + 1
    h10 = u3 - 2 * u2 + u1
    h01 = -2 * u3 + 3 * u2
    h11 = u3 - u2
    pos = h00 * p[i] + h10 * span[:, None] * m[i] + h01 * p[i + 1] + h11 * span[:, None] * m[i + 1]
    return make_se3(R, pos).to(dtype)
