"""Rotation helpers: quaternions (``wxyz``, unit, ``w >= 0``), axis-angle, geodesic angle.

Precision-sensitive maths runs in float64; results come back in the input dtype.
"""

import math

import torch
from torch import Tensor


def matrix_to_quaternion(R: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` -> unit quaternions ``[..., 4]`` (wxyz, ``w >= 0``).

    Uses the best-conditioned of the four Shepperd candidates, so it is accurate for every angle,
    180° included.
    """
    m = R.to(torch.float64)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    four_sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22],
        dim=-1,
    )
    candidates = torch.stack(
        [
            torch.stack([four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, four_sq[..., 3]], dim=-1),
        ],
        dim=-2,
    )
    best = four_sq.argmax(dim=-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    q = torch.nn.functional.normalize(q, dim=-1)
    q = torch.where(q[..., :1] < 0, -q, q)
    return q.to(R.dtype)


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Quaternions ``[..., 4]`` (wxyz, normalised here) -> rotation matrices ``[..., 3, 3]``."""
    w, x, y, z = torch.nn.functional.normalize(q.to(torch.float64), dim=-1).unbind(-1)
    # fmt: off
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    # fmt: on
    return R.reshape(*q.shape[:-1], 3, 3).to(q.dtype)


def random_rotation(*shape: int, generator=None, dtype=None, device=None) -> Tensor:
    """Haar-uniform random rotations ``[*shape, 3, 3]`` (normalised Gaussian quaternions)."""
    q = torch.randn(*shape, 4, generator=generator, dtype=torch.float64, device=device)
    return quaternion_to_matrix(q).to(dtype or torch.get_default_dtype())


def axis_angle_to_matrix(axis: Tensor, angle_deg) -> Tensor:
    """Rotation ``[..., 3, 3]`` by ``angle_deg`` (scalar or ``[...]``) about ``axis`` ``[..., 3]``.

    Right-handed: positive angles turn counter-clockwise seen from the tip of ``axis``.
    """
    axis = torch.nn.functional.normalize(axis, dim=-1)
    angle = torch.as_tensor(angle_deg, dtype=axis.dtype, device=axis.device) * (math.pi / 180)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).unflatten(-1, (3, 3))
    s, c = torch.sin(angle)[..., None, None], torch.cos(angle)[..., None, None]
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device)
    return eye + s * cross + (1 - c) * (cross @ cross)


def rotation_angle_deg(R: Tensor) -> Tensor:
    """Rotation angle in degrees ``[...]`` of ``R`` ``[..., 3, 3]``, in ``[0, 180]``.

    ``atan2(|vee(R - R^T)| / 2, (tr R - 1) / 2)`` in float64: accurate near 0° and 180°, where
    a clamped ``acos`` of the trace alone loses half the digits.
    """
    m = R.to(torch.float64)
    cos = ((m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2] - 1) / 2).clamp(-1.0, 1.0)
    vee = torch.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]],
        dim=-1,
    )
    sin = vee.norm(dim=-1) / 2
    return torch.rad2deg(torch.atan2(sin, cos)).to(R.dtype)
