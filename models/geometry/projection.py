"""Pinhole projection, unprojection and per-pixel rays.

Pixel ``(u, v)`` has its centre at ``(u + 0.5, v + 0.5)`` (see ``cameras``). Depth is always
z-depth along the camera's optical axis, not distance along the ray; convert with
``ray_distance_to_depth`` / ``depth_to_ray_distance``. Leading dimensions broadcast between
depth/points, ``K`` and ``c2w``.
"""

import torch
from torch import Tensor

from .cameras import invert_se3


def pixel_grid(H: int, W: int, *, dtype=None, device=None) -> Tensor:
    """Pixel centres ``[H, W, 2]`` as ``(x, y) = (u + 0.5, v + 0.5)``."""
    dtype = dtype or torch.get_default_dtype()
    u = torch.arange(W, dtype=dtype, device=device) + 0.5
    v = torch.arange(H, dtype=dtype, device=device) + 0.5
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu, vv], dim=-1)


def camera_directions(K: Tensor, H: int, W: int) -> Tensor:
    """Camera-frame directions ``K^-1 [x, y, 1]`` with z = 1 per pixel centre ``[..., H, W, 3]``."""
    xy = pixel_grid(H, W, dtype=K.dtype, device=K.device)
    pix = torch.cat([xy, torch.ones_like(xy[..., :1])], dim=-1)
    K_inv = torch.linalg.inv(K)
    return (K_inv[..., None, None, :, :] @ pix[..., None])[..., 0]


def _to_world(points_cam: Tensor, c2w: Tensor) -> Tensor:
    R = c2w[..., None, None, :3, :3]
    t = c2w[..., None, None, :3, 3]
    return (R @ points_cam[..., None])[..., 0] + t


def unproject(depth: Tensor, K: Tensor, c2w: Tensor) -> Tensor:
    """World points ``[..., H, W, 3]`` of every pixel centre from z-depth ``[..., H, W]``.

    ``K`` ``[..., 3, 3]``, ``c2w`` ``[..., 4, 4]``.
    """
    H, W = depth.shape[-2:]
    dirs = camera_directions(K.to(depth.dtype), H, W)
    return _to_world(dirs * depth[..., None], c2w.to(depth.dtype))


def project(points: Tensor, K: Tensor, c2w: Tensor) -> tuple[Tensor, Tensor]:
    """World points ``[..., N, 3]`` -> pixel coords ``uv`` ``[..., N, 2]`` and z-depth ``[..., N]``.

    ``uv`` uses the continuous convention (pixel centres at ``+0.5``). Points with depth <= 0 are
    behind the camera and their ``uv`` is meaningless (inf at depth 0); mask them with ``depth``.
    """
    w2c = invert_se3(c2w)
    p_cam = (w2c[..., None, :3, :3] @ points[..., None])[..., 0] + w2c[..., None, :3, 3]
    depth = p_cam[..., 2]
    uvw = (K[..., None, :, :] @ p_cam[..., None])[..., 0]
    return uvw[..., :2] / depth[..., None], depth


def camera_rays(K: Tensor, c2w: Tensor, H: int, W: int) -> tuple[Tensor, Tensor]:
    """World-space rays through every pixel centre.

    ``K`` ``[..., 3, 3]``, ``c2w`` ``[..., 4, 4]`` -> ``origins``, unit ``directions``, both
    ``[..., H, W, 3]``.
    """
    dirs_cam = camera_directions(K, H, W)
    dirs = (c2w[..., None, None, :3, :3] @ dirs_cam[..., None])[..., 0]
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    origins = c2w[..., None, None, :3, 3].expand_as(dirs)
    return origins, dirs


def ray_distance_to_depth(distance: Tensor, K: Tensor) -> Tensor:
    """Distance along each pixel's ray ``[..., H, W]`` -> z-depth ``[..., H, W]``."""
    H, W = distance.shape[-2:]
    norm = camera_directions(K.to(distance.dtype), H, W).norm(dim=-1)
    return distance / norm


def depth_to_ray_distance(depth: Tensor, K: Tensor) -> Tensor:
    """Z-depth ``[..., H, W]`` -> distance along each pixel's ray ``[..., H, W]``."""
    H, W = depth.shape[-2:]
    norm = camera_directions(K.to(depth.dtype), H, W).norm(dim=-1)
    return depth * norm
