"""Similarity alignment of point sets (Umeyama 1991), float64 inside."""

import torch
from torch import Tensor


def umeyama(src: Tensor, dst: Tensor, with_scale: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares ``(s, R, t)`` minimising ``sum ||dst - (s R src + t)||^2``.

    ``src``, ``dst`` ``[N, D]`` (D = 3 for cameras) -> ``s`` scalar tensor, ``R`` ``[D, D]`` with
    ``det R = +1`` (never a reflection), ``t`` ``[D]``, in the dtype of ``src``. Without
    ``with_scale``, ``s = 1`` (rigid). A degenerate ``src`` (all points equal) gives ``s = 1``.
    """
    if src.shape != dst.shape or src.ndim != 2:
        raise ValueError(f"expected matching [N, D] inputs, got {src.shape} and {dst.shape}")
    x = src.to(torch.float64)
    y = dst.to(torch.float64)
    mu_x, mu_y = x.mean(0), y.mean(0)
    xc, yc = x - mu_x, y - mu_y
    cov = yc.T @ xc / x.shape[0]
    U, D, Vh = torch.linalg.svd(cov)
    S = torch.ones_like(D)
    if torch.linalg.det(U) * torch.linalg.det(Vh) < 0:
        S[-1] = -1
    R = U @ torch.diag(S) @ Vh
    var_x = xc.square().sum(-1).mean()
    if with_scale and var_x > 0:
        s = (D * S).sum() / var_x
    else:
        s = torch.ones((), dtype=torch.float64, device=x.device)
    t = mu_y - s * (R @ mu_x)
    return s.to(src.dtype), R.to(src.dtype), t.to(src.dtype)


def apply_sim3(points: Tensor, s, R: Tensor, t: Tensor) -> Tensor:
    """``s R p + t`` for points ``[..., 3]``; ``s`` scalar, ``R`` ``[3, 3]``, ``t`` ``[3]``."""
    return s * (points @ R.transpose(-1, -2)) + t


def apply_sim3_to_poses(c2w: Tensor, s, R: Tensor, t: Tensor) -> Tensor:
    """Move cameras ``c2w`` ``[..., 4, 4]`` by the world similarity ``(s, R, t)``.

    Orientations are rotated by ``R``; centres map through ``apply_sim3``.
    """
    out = c2w.clone()
    out[..., :3, :3] = R @ c2w[..., :3, :3]
    out[..., :3, 3] = apply_sim3(c2w[..., :3, 3], s, R, t)
    return out
