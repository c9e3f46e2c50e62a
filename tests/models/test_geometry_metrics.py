import math

import pytest
import torch

from models.geometry import (
    apply_sim3_to_poses,
    ate_rmse,
    axis_angle_to_matrix,
    camera_precision,
    make_se3,
    random_rotation,
    rotation_error_deg,
)

F64 = torch.float64


def _trajectory(n=12, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    R = random_rotation(n, generator=g, dtype=dtype)
    t = torch.cumsum(torch.randn(n, 3, generator=g, dtype=dtype), dim=0)
    return make_se3(R, t)


def _random_sim3(seed):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.tensor(0.2 + 3 * torch.rand((), generator=g).item(), dtype=F64),
        random_rotation(generator=g, dtype=F64),
        torch.randn(3, generator=g, dtype=F64) * 10,
    )


def test_rotation_error_deg_known_angles():
    axis = torch.tensor([0.3, -0.5, 0.8], dtype=F64)
    angles = torch.tensor([0.0, 1e-6, 10.0, 90.0, 179.9, 180.0], dtype=F64)
    R_a = random_rotation(generator=torch.Generator().manual_seed(1), dtype=F64)
    R_b = R_a @ axis_angle_to_matrix(axis.expand(6, 3), angles)
    torch.testing.assert_close(rotation_error_deg(R_a, R_b), angles, rtol=0, atol=1e-9)
    torch.testing.assert_close(
        rotation_error_deg(R_b, R_a.expand(6, 3, 3)), angles, rtol=0, atol=1e-9
    )
    assert rotation_error_deg(torch.eye(3), torch.eye(3)).item() == 0.0


def test_ate_zero_for_identical_and_similar_trajectories():
    c2w = _trajectory()
    for align in ("sim3", "se3", "none"):
        assert ate_rmse(c2w, c2w, align=align) == pytest.approx(0.0, abs=1e-12)
    s, R, t = _random_sim3(2)
    moved = apply_sim3_to_poses(c2w, s, R, t)
    assert ate_rmse(moved, c2w, align="sim3") < 1e-9
    assert ate_rmse(moved, c2w, align="none") > 1.0
    rigid = apply_sim3_to_poses(c2w, 1.0, R, t)
    assert ate_rmse(rigid, c2w, align="se3") < 1e-9
    assert ate_rmse(moved, c2w, align="se3") > 1e-2


def test_ate_hand_cases():
    c2w = _trajectory()
    shifted = c2w.clone()
    shifted[:, :3, 3] += torch.tensor([0.3, 0.4, 0.0], dtype=F64)
    assert ate_rmse(shifted, c2w, align="none") == pytest.approx(0.5, abs=1e-12)
    assert ate_rmse(shifted, c2w, align="se3") == pytest.approx(0.0, abs=1e-12)
    # two cameras, est errors of 1 and 3 along x -> sqrt((1 + 9) / 2)
    gt = make_se3(torch.eye(3, dtype=F64).expand(2, 3, 3), torch.zeros(2, 3, dtype=F64))
    est = gt.clone()
    est[0, 0, 3], est[1, 0, 3] = 1.0, 3.0
    assert ate_rmse(est, gt, align="none") == pytest.approx(math.sqrt(5.0), abs=1e-12)
    with pytest.raises(ValueError):
        ate_rmse(est, gt, align="bogus")


def test_ate_float32_input():
    c2w = _trajectory(dtype=torch.float32)
    shifted = c2w.clone()
    shifted[:, :3, 3] += torch.tensor([0.3, 0.4, 0.0])
    assert ate_rmse(shifted, c2w, align="none") == pytest.approx(0.5, abs=1e-5)


def test_camera_precision_zero_for_identical():
    c2w = _trajectory()
    out = camera_precision(c2w, c2w)
    assert set(out) == {"rot_err_deg", "trans_err"}
    assert out["rot_err_deg"] == pytest.approx(0.0, abs=1e-9)
    assert out["trans_err"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_camera_precision_invariant_to_global_similarity(seed):
    gt = _trajectory(seed=seed)
    noise = _trajectory(seed=seed + 100)
    est = gt.clone()
    est[:, :3, :3] = est[:, :3, :3] @ axis_angle_to_matrix(noise[:, :3, 0], 3.0)
    est[:, :3, 3] += 0.1 * noise[:, :3, 1]
    base = camera_precision(est, gt, reduce=False)
    assert base["rot_err_deg"].max() > 1.0 and base["trans_err"].max() > 1e-3
    s, R, t = _random_sim3(seed)
    moved = camera_precision(apply_sim3_to_poses(est, s, R, t), gt, reduce=False)
    torch.testing.assert_close(moved["rot_err_deg"], base["rot_err_deg"], rtol=0, atol=1e-9)
    torch.testing.assert_close(moved["trans_err"], base["trans_err"], rtol=0, atol=1e-12)
    # a pure scale + rigid copy of the ground truth scores zero
    copy = camera_precision(apply_sim3_to_poses(gt, s, R, t), gt)
    assert copy["rot_err_deg"] < 1e-9 and copy["trans_err"] < 1e-12


def test_camera_precision_hand_case_rotation_offset():
    n = 5
    gt = _trajectory(n=n, seed=4)
    est = gt.clone()
    est[2, :3, :3] = est[2, :3, :3] @ axis_angle_to_matrix(
        torch.tensor([0.0, 1.0, 0.0], dtype=F64), 10.0
    )
    per_frame = camera_precision(est, gt, reduce=False)
    expected = torch.tensor([0.0, 0.0, 10.0, 0.0, 0.0], dtype=F64)
    torch.testing.assert_close(per_frame["rot_err_deg"], expected, rtol=0, atol=1e-9)
    torch.testing.assert_close(
        per_frame["trans_err"], torch.zeros(n, dtype=F64), rtol=0, atol=1e-12
    )
    out = camera_precision(est, gt)
    assert out["rot_err_deg"] == pytest.approx(10.0 / n, abs=1e-9)
    assert out["trans_err"] == pytest.approx(0.0, abs=1e-12)


def test_camera_precision_hand_case_translation():
    eye = torch.eye(3, dtype=F64).expand(3, 3, 3)
    gt = make_se3(eye, torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]], dtype=F64))
    # same shape at 10x scale except the last camera is off by (0, 10, 0) -> (0, 1/sqrt(5)... )
    est = make_se3(eye, torch.tensor([[5.0, 5, 5], [15, 5, 5], [25, 15, 5]], dtype=F64))
    per_frame = camera_precision(est, gt, reduce=False)
    far = math.hypot(20.0, 10.0)
    t_est = torch.tensor([[0.0, 0, 0], [10, 0, 0], [20, 10, 0]], dtype=F64) / far
    t_gt = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [1, 0, 0]], dtype=F64)
    torch.testing.assert_close(per_frame["trans_err"], (t_est - t_gt).norm(dim=-1))
    assert per_frame["rot_err_deg"].abs().max() == 0.0


def test_camera_precision_static_trajectory_is_guarded():
    eye = torch.eye(3, dtype=F64).expand(3, 3, 3)
    static = make_se3(eye, torch.ones(3, 3, dtype=F64))
    out = camera_precision(static, static)
    assert math.isfinite(out["trans_err"]) and out["trans_err"] == 0.0
