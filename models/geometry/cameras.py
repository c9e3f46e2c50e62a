"""Camera intrinsics and extrinsics.

Convention (see DESIGN.md "One camera convention"):

- OpenCV camera frame: x right, y down, z forward.
- Extrinsics are camera-to-world ``c2w`` ``[..., 4, 4]``; ``w2c = invert_se3(c2w)``.
- Intrinsics ``K`` ``[..., 3, 3]`` in pixels.
- Pixel ``(u, v)`` (column, row) has its centre at continuous image coordinates
  ``(u + 0.5, v + 0.5)``; the image covers ``[0, W] x [0, H]``. A centred principal point is
  therefore ``(W / 2, H / 2)``, and resizing an image by ``(sx, sy)`` maps ``K`` to
  ``diag(sx, sy, 1) @ K`` exactly (``scale_K``).

All functions broadcast over leading dimensions and keep the input dtype and device.
"""

import torch
from torch import Tensor

_GL_TO_CV = (1.0, -1.0, -1.0, 1.0)


def _common_dtype(values, dtype):
    if dtype is not None:
        return dtype
    for v in values:
        if isinstance(v, Tensor) and v.is_floating_point():
            return v.dtype
    return torch.get_default_dtype()


def make_K(fx, fy, cx, cy, *, dtype=None, device=None) -> Tensor:
    """Pinhole intrinsics from scalars or tensors ``[...]`` (broadcast) -> ``[..., 3, 3]``."""
    values = (fx, fy, cx, cy)
    dtype = _common_dtype(values, dtype)
    fx, fy, cx, cy = torch.broadcast_tensors(
        *(torch.as_tensor(v, dtype=dtype, device=device) for v in values)
    )
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    rows = (
        torch.stack([fx, zero, cx], -1),
        torch.stack([zero, fy, cy], -1),
        torch.stack([zero, zero, one], -1),
    )
    return torch.stack(rows, -2)


def K_from_fov(fov_deg, H: int, W: int, *, axis: str = "x", dtype=None, device=None) -> Tensor:
    """Intrinsics with square pixels and centred principal point ``(W/2, H/2)``.

    ``fov_deg`` (scalar or ``[...]``) is the full field of view along ``axis`` ("x": width,
    "y": height). Returns ``[..., 3, 3]``.
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    dtype = _common_dtype((fov_deg,), dtype)
    fov = torch.as_tensor(fov_deg, dtype=dtype, device=device)
    extent = W if axis == "x" else H
    f = (extent / 2) / torch.tan(torch.deg2rad(fov) / 2)
    return make_K(f, f, W / 2, H / 2, dtype=dtype, device=device)


def scale_K(K: Tensor, sx, sy=None) -> Tensor:
    """Intrinsics of the image resized by ``(sx, sy)`` (e.g. ``1/8`` for VAE latents).

    ``K`` ``[..., 3, 3]``; ``sx``, ``sy`` scalars or ``[...]``; ``sy`` defaults to ``sx``.
    """
    sy = sx if sy is None else sy
    sx, sy = torch.broadcast_tensors(
        torch.as_tensor(sx, dtype=K.dtype, device=K.device),
        torch.as_tensor(sy, dtype=K.dtype, device=K.device),
    )
    S = torch.diag_embed(torch.stack([sx, sy, torch.ones_like(sx)], dim=-1))
    return S @ K


def make_se3(R: Tensor, t: Tensor) -> Tensor:
    """Rigid transform ``[..., 4, 4]`` from ``R`` ``[..., 3, 3]`` and ``t`` ``[..., 3]``."""
    R, t = torch.broadcast_tensors(R, t[..., None])
    top = torch.cat([R, t[..., :1]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1
    return torch.cat([top, bottom], dim=-2)


def invert_se3(T: Tensor) -> Tensor:
    """Closed-form inverse of rigid transforms ``[..., 4, 4]`` (``[R t] -> [R^T, -R^T t]``)."""
    Rt = T[..., :3, :3].transpose(-1, -2)
    t = -(Rt @ T[..., :3, 3:4])[..., 0]
    return make_se3(Rt, t)


def c2w_to_w2c(c2w: Tensor) -> Tensor:
    """Camera-to-world ``[..., 4, 4]`` -> world-to-camera ``[..., 4, 4]``."""
    return invert_se3(c2w)


def w2c_to_c2w(w2c: Tensor) -> Tensor:
    """World-to-camera ``[..., 4, 4]`` -> camera-to-world ``[..., 4, 4]``."""
    return invert_se3(w2c)


def relative_pose(c2w_a: Tensor, c2w_b: Tensor) -> Tensor:
    """Pose of camera b in camera a's frame: ``inv(c2w_a) @ c2w_b`` ``[..., 4, 4]``."""
    return invert_se3(c2w_a) @ c2w_b


def camera_centers(c2w: Tensor) -> Tensor:
    """Camera centres in world space ``[..., 3]`` from ``c2w`` ``[..., 4, 4]``."""
    return c2w[..., :3, 3]


def look_at(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """OpenCV ``c2w`` ``[..., 4, 4]`` at ``eye`` looking at ``target`` (``[..., 3]`` each).

    The camera z axis points at the target and the camera y axis (down) is as close to ``-up`` as
    possible. ``up`` must not be parallel to the viewing direction.
    """
    eye, target, up = torch.broadcast_tensors(eye, target, up)
    z = torch.nn.functional.normalize(target - eye, dim=-1)
    x = torch.nn.functional.normalize(torch.linalg.cross(z, up), dim=-1)
    y = torch.linalg.cross(z, x)
    return make_se3(torch.stack([x, y, z], dim=-1), eye)


def opengl_to_opencv(c2w: Tensor) -> Tensor:
    """OpenGL/Blender ``c2w`` (x right, y up, z back) -> OpenCV ``c2w`` ``[..., 4, 4]``."""
    flip = torch.tensor(_GL_TO_CV, dtype=c2w.dtype, device=c2w.device)
    return c2w * flip


def opencv_to_opengl(c2w: Tensor) -> Tensor:
    """OpenCV ``c2w`` -> OpenGL/Blender ``c2w`` ``[..., 4, 4]`` (the same axis flip)."""
    return opengl_to_opencv(c2w)


def is_rotation(R: Tensor, atol: float = 1e-5) -> Tensor:
    """Bool ``[...]``: ``R`` ``[..., 3, 3]`` is orthonormal with determinant +1 within ``atol``."""
    eye = torch.eye(R.shape[-1], dtype=R.dtype, device=R.device)
    orthonormal = ((R @ R.transpose(-1, -2) - eye).abs() <= atol).all(-1).all(-1)
    proper = (torch.linalg.det(R) - 1).abs() <= atol
    return orthonormal & proper
