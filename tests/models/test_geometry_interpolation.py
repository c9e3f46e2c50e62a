import math

import pytest
import torch

from models.geometry import (
    axis_angle_to_matrix,
    interpolate_poses,
    is_rotation,
    make_se3,
    matrix_to_quaternion,
    quaternion_to_matrix,
    random_rotation,
    rotation_angle_deg,
    rotation_error_deg,
    slerp,
)

F64 = torch.float64


def _quat_angle_deg(a, b):
    dot = (a * b).sum(-1).abs().clamp(max=1.0)
    return torch.rad2deg(2 * torch.acos(dot))


def test_quaternion_round_trip_random():
    R = random_rotation(200, generator=torch.Generator().manual_seed(0), dtype=F64)
    q = matrix_to_quaternion(R)
    assert q.shape == (200, 4)
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(200, dtype=F64))
    assert bool((q[:, 0] >= 0).all())
    torch.testing.assert_close(quaternion_to_matrix(q), R, rtol=0, atol=1e-12)


def test_quaternion_round_trip_180_degrees():
    g = torch.Generator().manual_seed(1)
    axes = torch.cat([torch.eye(3, dtype=F64), torch.randn(20, 3, generator=g, dtype=F64)])
    R = axis_angle_to_matrix(axes, 180.0)
    assert bool(is_rotation(R, atol=1e-12).all())
    q = matrix_to_quaternion(R)
    torch.testing.assert_close(q[:, 0], torch.zeros(23, dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        q[:, 1:].abs(), torch.nn.functional.normalize(axes, dim=-1).abs(), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(quaternion_to_matrix(q), R, rtol=0, atol=1e-12)
    torch.testing.assert_close(rotation_angle_deg(R), torch.full((23,), 180.0, dtype=F64))


def test_quaternion_known_values_and_float32():
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 1.0]), 90.0)
    q = matrix_to_quaternion(R)
    assert q.dtype == torch.float32
    s = math.sqrt(0.5)
    torch.testing.assert_close(q, torch.tensor([s, 0.0, 0.0, s]))
    torch.testing.assert_close(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(matrix_to_quaternion(torch.eye(3)), torch.tensor([1.0, 0, 0, 0]))


def test_slerp_endpoints_and_constant_speed():
    g = torch.Generator().manual_seed(2)
    q0 = matrix_to_quaternion(random_rotation(8, generator=g, dtype=F64))
    q1 = matrix_to_quaternion(random_rotation(8, generator=g, dtype=F64))
    torch.testing.assert_close(slerp(q0, q1, 0.0), q0)
    end = slerp(q0, q1, 1.0)
    torch.testing.assert_close(quaternion_to_matrix(end), quaternion_to_matrix(q1))
    total = _quat_angle_deg(q0, q1)
    ts = torch.linspace(0, 1, 11, dtype=F64)
    path = slerp(q0[None], q1[None], ts[:, None])
    assert path.shape == (11, 8, 4)
    torch.testing.assert_close(path.norm(dim=-1), torch.ones(11, 8, dtype=F64))
    from_start = _quat_angle_deg(path, q0)
    torch.testing.assert_close(from_start, ts[:, None] * total, rtol=0, atol=1e-6)
    steps = _quat_angle_deg(path[1:], path[:-1])
    torch.testing.assert_close(steps, (total / 10).expand(10, 8), rtol=0, atol=1e-6)


def test_slerp_takes_shortest_path():
    q0 = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=F64)
    half = math.radians(170.0) / 2
    q1 = torch.tensor([math.cos(half), 0.0, 0.0, math.sin(half)], dtype=F64)
    mid = slerp(q0, -q1, 0.5)  # -q1 is the same rotation (170° about z)
    angle = rotation_angle_deg(quaternion_to_matrix(mid))
    assert angle.item() == pytest.approx(85.0, abs=1e-9)


def test_slerp_near_parallel_is_finite():
    q0 = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=F64)
    q1 = torch.tensor([1.0, 1e-10, 0.0, 0.0], dtype=F64)
    out = slerp(q0, q1, torch.linspace(0, 1, 5, dtype=F64))
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(out, q0.expand(5, 4), rtol=0, atol=1e-9)
    same = slerp(q0, q0, 0.3)
    torch.testing.assert_close(same, q0)


def _keyframes(dtype=F64):
    g = torch.Generator().manual_seed(5)
    R = random_rotation(5, generator=g, dtype=dtype)
    t = torch.randn(5, 3, generator=g, dtype=dtype) * 2
    return make_se3(R, t), torch.tensor([0.0, 0.7, 1.5, 2.0, 3.4], dtype=dtype)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_interpolate_poses_hits_keyframes_exactly(dtype):
    keys, tk = _keyframes(dtype)
    out = interpolate_poses(keys, tk, tk)
    assert out.dtype == dtype
    torch.testing.assert_close(out, keys, rtol=0, atol=0)


def test_interpolate_poses_rotations_and_smoothness():
    keys, tk = _keyframes()
    times = torch.linspace(-0.5, 4.0, 901, dtype=F64)
    out = interpolate_poses(keys, tk, times)
    assert out.shape == (901, 4, 4)
    assert bool(is_rotation(out[:, :3, :3], atol=1e-10).all())
    assert out[:, 3].tolist() == [[0.0, 0.0, 0.0, 1.0]] * 901
    # outside the key range the end poses are held
    torch.testing.assert_close(out[0], keys[0])
    torch.testing.assert_close(out[-1], keys[-1])
    # positions are continuous with continuous velocity (C1): no jumps between samples
    inside = (times > tk[0]) & (times < tk[-1])
    pos = out[inside, :3, 3]
    vel = (pos[1:] - pos[:-1]) / 0.005
    assert (pos[1:] - pos[:-1]).norm(dim=-1).max() < 0.2
    assert (vel[1:] - vel[:-1]).norm(dim=-1).max() < 1.0
    # rotation moves monotonically along the geodesic within a segment
    seg = (times >= tk[1]) & (times <= tk[2])
    angles = rotation_error_deg(keys[1, :3, :3].expand(int(seg.sum()), 3, 3), out[seg, :3, :3])
    assert bool((angles[1:] >= angles[:-1] - 1e-9).all())


def test_interpolate_poses_linear_positions_for_collinear_uniform_keys():
    R = torch.eye(3, dtype=F64).expand(4, 3, 3)
    t = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]], dtype=F64)
    keys = make_se3(R, t)
    out = interpolate_poses(keys, torch.arange(4, dtype=F64), torch.tensor([0.25, 1.5, 2.9]))
    torch.testing.assert_close(out[:, 0, 3], torch.tensor([0.25, 1.5, 2.9], dtype=F64))


def test_interpolate_poses_rejects_unsorted_times():
    keys, _ = _keyframes()
    with pytest.raises(ValueError):
        interpolate_poses(keys, torch.tensor([0.0, 2.0, 1.0, 3.0, 4.0]), torch.tensor([0.5]))
