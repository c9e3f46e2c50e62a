"""Camera-trajectory metrics: ATE and Wonderland's camera-guidance precision."""

import torch
from torch import Tensor

from .alignment import apply_sim3, umeyama
from .cameras import relative_pose
from .rotations import rotation_angle_deg


def rotation_error_deg(R_a: Tensor, R_b: Tensor) -> Tensor:
    """Geodesic angle in degrees (float64) ``[...]`` between ``R_a``, ``R_b`` ``[..., 3, 3]``."""
    return rotation_angle_deg(R_a.transpose(-1, -2).to(torch.float64) @ R_b.to(torch.float64))


def ate_rmse(c2w_est: Tensor, c2w_gt: Tensor, align: str = "sim3") -> float:
    """Absolute trajectory error: RMSE of camera centres after aligning estimate onto GT.

    ``c2w_est``, ``c2w_gt`` ``[N, 4, 4]``. ``align``: "sim3" (Umeyama with scale), "se3"
    (rigid) or "none".
    """
    if align not in ("sim3", "se3", "none"):
        raise ValueError(f"align must be 'sim3', 'se3' or 'none', got {align!r}")
    est = c2w_est[..., :3, 3].to(torch.float64)
    gt = c2w_gt[..., :3, 3].to(torch.float64)
    if align != "none":
        est = apply_sim3(est, *umeyama(est, gt, with_scale=align == "sim3"))
    return float((est - gt).square().sum(-1).mean().sqrt())


def _normalised_relative(c2w: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    rel = relative_pose(c2w[:1], c2w)
    t = rel[:, :3, 3]
    scale = t.norm(dim=-1).max()
    scale = torch.where(scale > eps, scale, torch.ones_like(scale))
    return rel[:, :3, :3], t / scale


def camera_precision(
    c2w_est: Tensor, c2w_gt: Tensor, reduce: bool = True, eps: float = 1e-12
) -> dict:
    """Camera-guidance precision (Wonderland §4.1 / App. D.2; CameraCtrl-style RotErr, TransErr).

    ``c2w_est``, ``c2w_gt`` ``[N, 4, 4]``. Both trajectories are made relative to their first
    frame (``inv(c2w[0]) @ c2w``) and brought to a unified scale by dividing the relative
    translations by the distance of the farthest camera from the first one (left unscaled when
    that distance is <= ``eps``). Per frame: ``rot_err_deg`` = geodesic angle between relative
    rotations, ``trans_err`` = L2 distance between normalised relative translations. The mean
    runs over all N frames, frame 0 included (its error is 0 by construction). Returns floats,
    or per-frame ``[N]`` float64 tensors when ``reduce=False``.
    """
    R_est, t_est = _normalised_relative(c2w_est.to(torch.float64), eps)
    R_gt, t_gt = _normalised_relative(c2w_gt.to(torch.float64), eps)
    rot = rotation_error_deg(R_est, R_gt)
    trans = (t_est - t_gt).norm(dim=-1)
    if not reduce:
        return {"rot_err_deg": rot, "trans_err": trans}
    return {"rot_err_deg": float(rot.mean()), "trans_err": float(trans.mean())}
