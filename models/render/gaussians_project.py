"""Pure-torch projection of 3D Gaussians (EWA) and 2D surfels to screen space, as gsplat does.

Both functions take Gaussians ``[B, N, ...]`` and cameras ``[B, C, ...]`` (world-to-camera
``viewmats``, OpenCV, ``K`` in pixels) and return per-(camera, Gaussian) tensors ``[B, C, N, ...]``
with a ``valid`` mask that reproduces gsplat 1.5.3's culling (near/far, degenerate, outside the
image). Invalid entries hold finite placeholder values so that autograd stays NaN-free.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0  # gsplat's ALPHA_THRESHOLD: fainter contributions are skipped
EXTEND_3DGS = 3.33  # bounding-box extent in standard deviations (gsplat)


@dataclass
class Projected:
    """Screen-space Gaussians, all ``[B, C, N, ...]``.

    ``params`` are what the per-pixel kernel needs: 3dgs ``(mx, my, conic_xx, conic_xy, conic_yy)``
    (5), 2dgs ``(mx, my, M row-major)`` (11) with ``M = K @ [R t_u s_u, R t_v s_v, mean_c]``.
    ``normals`` (2dgs only) are camera-frame unit normals facing the camera.
    """

    means2d: Tensor  # [B, C, N, 2]
    radii: Tensor  # [B, C, N, 2] float, bounding-box half extents in pixels
    depths: Tensor  # [B, C, N] camera z
    params: Tensor  # [B, C, N, P]
    valid: Tensor  # [B, C, N] bool
    normals: Tensor | None = None  # [B, C, N, 3]


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Quaternions ``[..., 4]`` (wxyz, any norm) -> rotation matrices ``[..., 3, 3]``."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return R.reshape(*quats.shape[:-1], 3, 3)


def _to_camera(means: Tensor, viewmats: Tensor) -> Tensor:
    """World means ``[B, N, 3]``, viewmats ``[B, C, 4, 4]`` -> camera means ``[B, C, N, 3]``."""
    R, t = viewmats[..., :3, :3], viewmats[..., :3, 3]
    return torch.einsum("bcij,bnj->bcni", R, means) + t[:, :, None, :]


def _inside(means2d: Tensor, rx: Tensor, ry: Tensor, width: int, height: int) -> Tensor:
    mx, my = means2d.unbind(-1)
    return (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)


def project_3dgs(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near: float,
    far: float,
    eps2d: float,
) -> Projected:
    """EWA splatting: ``Σ2d = J W Σ Wᵀ Jᵀ + eps2d·I`` with gsplat's clamped-frustum Jacobian.

    means/scales ``[B, N, 3]``, quats ``[B, N, 4]``, opacities ``[B, N]``, viewmats ``[B, C, 4, 4]``,
    Ks ``[B, C, 3, 3]``. The bounding box is opacity-aware (gsplat: ``min(3.33,
    sqrt(2 ln(o / (1/255))))`` standard deviations), so no pixel outside it reaches alpha 1/255.
    """
    R = quat_to_rotmat(quats)
    M = R * scales[..., None, :]
    covars = M @ M.transpose(-1, -2)  # [B, N, 3, 3]
    Rv = viewmats[..., :3, :3]
    means_c = _to_camera(means, viewmats)
    covars_c = torch.einsum("bcij,bnjk,bclk->bcnil", Rv, covars, Rv)

    x, y, z = means_c.unbind(-1)
    z_ok = (z >= near) & (z <= far)
    z = torch.where(z_ok, z, torch.ones_like(z))
    fx, fy = Ks[..., 0, 0, None], Ks[..., 1, 1, None]  # [B, C, 1]
    cx, cy = Ks[..., 0, 2, None], Ks[..., 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_yp, lim_yn = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    tx = z * torch.minimum(torch.maximum(x / z, -lim_xn), lim_xp)
    ty = z * torch.minimum(torch.maximum(y / z, -lim_yn), lim_yp)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * tx / z**2, zero, fy / z, -fy * ty / z**2], dim=-1)
    J = J.reshape(*z.shape, 2, 3)
    cov2d = J @ covars_c @ J.transpose(-1, -2)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)

    a = cov2d[..., 0, 0] + eps2d
    b = 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0])
    c = cov2d[..., 1, 1] + eps2d
    det = a * c - b * b
    det_ok = det > 0
    det = torch.where(det_ok, det, torch.ones_like(det))
    conic = torch.stack([c / det, -b / det, a / det], dim=-1)

    with torch.no_grad():
        op = opacities[:, None, :].expand_as(z)
        extend = torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
        extend = extend.clamp_max(EXTEND_3DGS)
        rx = torch.ceil(extend * a.clamp_min(0).sqrt())
        ry = torch.ceil(extend * c.clamp_min(0).sqrt())
        valid = z_ok & det_ok & (op >= ALPHA_THRESHOLD) & ((rx > 0) | (ry > 0))
        valid &= _inside(means2d, rx, ry, width, height)
    params = torch.cat([means2d, conic], dim=-1)
    return Projected(means2d, torch.stack([rx, ry], -1), means_c[..., 2], params, valid)


def project_2dgs(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near: float,
    far: float,
) -> Projected:
    """2DGS surfels: homogeneous ray-splat transform ``M = K [R t_u s_u, R t_v s_v, mean_c]``.

    The tangent axes are the rotation's first two columns scaled by ``scales[..., :2]``
    (``scales[..., 2]`` is ignored); the normal is the third column, flipped to face the camera.
    ``means2d`` and the bounding box are the centre and 3.33× half-extents of the projected
    unit-sigma conic, as in gsplat.
    """
    R = quat_to_rotmat(quats)  # [B, N, 3, 3]
    Rv = viewmats[..., :3, :3]
    means_c = _to_camera(means, viewmats)
    axes = torch.einsum("bcij,bnjk->bcnik", Rv, R)  # [B, C, N, 3, 3] columns = surfel axes
    tu = axes[..., 0] * scales[:, None, :, 0, None]
    tv = axes[..., 1] * scales[:, None, :, 1, None]
    WH = torch.stack([tu, tv, means_c], dim=-1)  # [B, C, N, 3, 3]
    M = Ks[:, :, None] @ WH  # rows: M0, M1, M2

    z = means_c[..., 2]
    sgn = torch.tensor([1.0, 1.0, -1.0], dtype=M.dtype, device=M.device)
    M0, M1, M2 = M[..., 0, :], M[..., 1, :], M[..., 2, :]
    dist = (M2 * M2 * sgn).sum(-1)
    dist_ok = dist != 0
    dist = torch.where(dist_ok, dist, torch.ones_like(dist))
    means2d = torch.stack([(M0 * M2 * sgn).sum(-1), (M1 * M2 * sgn).sum(-1)], dim=-1)
    means2d = means2d / dist[..., None]

    normal = axes[..., 2]
    facing = (-normal * means_c).sum(-1, keepdim=True) > 0
    normal = torch.where(facing, normal, -normal)

    with torch.no_grad():
        temp = torch.stack([(M0 * M0 * sgn).sum(-1), (M1 * M1 * sgn).sum(-1)], -1) / dist[..., None]
        half = (means2d * means2d - temp).clamp_min(1e-4)
        radii = torch.ceil(3.33 * half.sqrt())
        rx, ry = radii.unbind(-1)
        valid = (z > near) & (z < far) & dist_ok & ((rx > 0) | (ry > 0))
        valid &= _inside(means2d, rx, ry, width, height)
    params = torch.cat([means2d, M.flatten(-2)], dim=-1)
    return Projected(means2d, radii, z, params, valid, normal)
