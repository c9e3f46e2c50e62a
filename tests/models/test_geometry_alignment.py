import pytest
import torch

from models.geometry import (
    apply_sim3,
    apply_sim3_to_poses,
    is_rotation,
    make_se3,
    random_rotation,
    umeyama,
)

F64 = torch.float64


def _similarity(seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.tensor(0.3 + 2.5 * torch.rand((), generator=g).item(), dtype=F64)
    R = random_rotation(generator=g, dtype=F64)
    t = torch.randn(3, generator=g, dtype=F64) * 5
    src = torch.randn(40, 3, generator=g, dtype=F64) * 2
    return s, R, t, src


@pytest.mark.parametrize("seed", range(5))
def test_umeyama_recovers_similarity(seed):
    s, R, t, src = _similarity(seed)
    dst = apply_sim3(src, s, R, t)
    s_hat, R_hat, t_hat = umeyama(src, dst)
    assert abs(s_hat.item() - s.item()) < 1e-8
    torch.testing.assert_close(R_hat, R, rtol=0, atol=1e-8)
    torch.testing.assert_close(t_hat, t, rtol=0, atol=1e-8)
    torch.testing.assert_close(apply_sim3(src, s_hat, R_hat, t_hat), dst, rtol=0, atol=1e-8)


def test_umeyama_rigid_ignores_scale():
    _, R, t, src = _similarity(7)
    dst = apply_sim3(src, 1.0, R, t)
    s_hat, R_hat, t_hat = umeyama(src, dst, with_scale=False)
    assert s_hat.item() == 1.0
    torch.testing.assert_close(R_hat, R, rtol=0, atol=1e-8)
    torch.testing.assert_close(t_hat, t, rtol=0, atol=1e-8)
    s2, _, _ = umeyama(src, apply_sim3(src, 3.0, R, t), with_scale=False)
    assert s2.item() == 1.0


def test_umeyama_float32():
    s, R, t, src = _similarity(9)
    dst = apply_sim3(src, s, R, t)
    s_hat, R_hat, t_hat = umeyama(src.float(), dst.float())
    assert R_hat.dtype == torch.float32
    torch.testing.assert_close(R_hat, R.float(), rtol=0, atol=1e-4)
    assert abs(s_hat.item() - s.item()) < 1e-4
    torch.testing.assert_close(t_hat, t.float(), rtol=0, atol=1e-3)


def test_umeyama_reflection_stays_proper_rotation():
    _, R, t, src = _similarity(11)
    mirror = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=F64))
    dst = apply_sim3(src, 1.0, R @ mirror, t)
    s_hat, R_hat, t_hat = umeyama(src, dst)
    assert bool(is_rotation(R_hat, atol=1e-10))
    assert torch.linalg.det(R_hat).item() == pytest.approx(1.0, abs=1e-12)
    err = (apply_sim3(src, s_hat, R_hat, t_hat) - dst).norm(dim=-1)
    assert err.max() > 1e-3  # a reflection is not representable


def test_umeyama_planar_points_reflection_free():
    g = torch.Generator().manual_seed(13)
    src = torch.randn(30, 3, generator=g, dtype=F64)
    src[:, 2] = 0
    R = random_rotation(generator=g, dtype=F64)
    dst = apply_sim3(src, 2.0, R, torch.ones(3, dtype=F64))
    s_hat, R_hat, t_hat = umeyama(src, dst)
    assert bool(is_rotation(R_hat, atol=1e-10))
    torch.testing.assert_close(apply_sim3(src, s_hat, R_hat, t_hat), dst, rtol=0, atol=1e-8)
    assert s_hat.item() == pytest.approx(2.0, abs=1e-10)


def test_apply_sim3_to_poses():
    s, R, t, _ = _similarity(3)
    g = torch.Generator().manual_seed(0)
    c2w = make_se3(
        random_rotation(4, generator=g, dtype=F64), torch.randn(4, 3, generator=g, dtype=F64)
    )
    moved = apply_sim3_to_poses(c2w, s, R, t)
    torch.testing.assert_close(moved[:, :3, :3], R @ c2w[:, :3, :3])
    torch.testing.assert_close(moved[:, :3, 3], s * c2w[:, :3, 3] @ R.T + t)
    assert bool(is_rotation(moved[:, :3, :3], atol=1e-12).all())
    assert moved[:, 3].tolist() == [[0.0, 0.0, 0.0, 1.0]] * 4
