import math

import pytest
import torch

from models.geometry import (
    K_from_fov,
    c2w_to_w2c,
    invert_se3,
    is_rotation,
    look_at,
    make_K,
    make_se3,
    opencv_to_opengl,
    opengl_to_opencv,
    random_rotation,
    relative_pose,
    scale_K,
    w2c_to_c2w,
)


def _random_poses(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    R = random_rotation(*shape, generator=g, dtype=dtype)
    t = torch.randn(*shape, 3, generator=g, dtype=dtype) * 3
    return make_se3(R, t)


def test_make_K_layout_and_broadcast():
    K = make_K(torch.tensor([100.0, 200.0]), 150.0, 32.0, 24.0)
    assert K.shape == (2, 3, 3)
    expected = torch.tensor([[200.0, 0.0, 32.0], [0.0, 150.0, 24.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(K[1], expected)
    assert make_K(1.0, 1.0, 0.0, 0.0, dtype=torch.float64).dtype == torch.float64
    assert make_K(torch.tensor(1.0, dtype=torch.float64), 1.0, 0.0, 0.0).dtype == torch.float64


def test_K_from_fov():
    K = K_from_fov(90.0, H=48, W=64, dtype=torch.float64)
    torch.testing.assert_close(K[0, 0], torch.tensor(32.0, dtype=torch.float64))
    torch.testing.assert_close(K[1, 1], K[0, 0])
    assert K[0, 2].item() == 32.0 and K[1, 2].item() == 24.0
    Ky = K_from_fov(60.0, H=48, W=64, axis="y", dtype=torch.float64)
    assert Ky[1, 1].item() == pytest.approx(24.0 / math.tan(math.radians(30.0)), rel=1e-12)
    assert K_from_fov(torch.tensor([60.0, 90.0]), 8, 8).shape == (2, 3, 3)


def test_scale_K_maps_pixel_centres_of_resized_image():
    K = make_K(120.0, 110.0, 33.0, 21.0, dtype=torch.float64)
    Ks = scale_K(K, 0.125)
    torch.testing.assert_close(
        Ks, make_K(15.0, 13.75, 4.125, 2.625, dtype=torch.float64), rtol=0, atol=0
    )
    Kxy = scale_K(K, 2.0, 0.5)
    assert Kxy[0, 0].item() == 240.0 and Kxy[1, 1].item() == 55.0
    assert Kxy[0, 2].item() == 66.0 and Kxy[1, 2].item() == 10.5
    assert Kxy[2].tolist() == [0.0, 0.0, 1.0]
    batched = scale_K(K.expand(3, 3, 3), torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    assert batched[:, 0, 0].tolist() == [120.0, 240.0, 480.0]


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_invert_se3(dtype, atol):
    T = _random_poses(4, 5, dtype=dtype)
    eye = torch.eye(4, dtype=dtype).expand(4, 5, 4, 4)
    torch.testing.assert_close(invert_se3(T) @ T, eye, rtol=0, atol=atol)
    torch.testing.assert_close(T @ invert_se3(T), eye, rtol=0, atol=atol)
    torch.testing.assert_close(invert_se3(T), torch.linalg.inv(T), rtol=0, atol=atol)
    torch.testing.assert_close(w2c_to_c2w(c2w_to_w2c(T)), T, rtol=0, atol=atol * 10)
    assert invert_se3(T)[..., 3, :].tolist() == [[[0, 0, 0, 1]] * 5] * 4


def test_relative_pose_consistency():
    T = _random_poses(3)
    a, b, c = T[0], T[1], T[2]
    rel_ab = relative_pose(a, b)
    torch.testing.assert_close(a @ rel_ab, b)
    torch.testing.assert_close(relative_pose(a, b) @ relative_pose(b, c), relative_pose(a, c))
    torch.testing.assert_close(relative_pose(a, a), torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(relative_pose(b, a), invert_se3(rel_ab))


def test_look_at_identity_case():
    c2w = look_at(torch.zeros(3), torch.tensor([0.0, 0.0, 5.0]), torch.tensor([0.0, -1.0, 0.0]))
    torch.testing.assert_close(c2w, torch.eye(4))


def test_look_at_points_z_at_target():
    g = torch.Generator().manual_seed(1)
    eye = torch.randn(16, 3, generator=g, dtype=torch.float64) * 4
    target = torch.randn(16, 3, generator=g, dtype=torch.float64)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(16, 3)
    c2w = look_at(eye, target, up)
    assert c2w.shape == (16, 4, 4)
    assert bool(is_rotation(c2w[:, :3, :3], atol=1e-12).all())
    torch.testing.assert_close(c2w[:, :3, 3], eye)
    view = torch.nn.functional.normalize(target - eye, dim=-1)
    torch.testing.assert_close(c2w[:, :3, 2], view)
    # image "down" (camera +y) points against world up; camera x is horizontal
    assert bool(((c2w[:, :3, 1] * up).sum(-1) < 0).all())
    torch.testing.assert_close((c2w[:, :3, 0] * up).sum(-1), torch.zeros(16, dtype=torch.float64))
    # target sits on the optical axis in front of the camera
    p_cam = (
        invert_se3(c2w) @ torch.cat([target, torch.ones(16, 1, dtype=torch.float64)], -1)[..., None]
    )[..., :3, 0]
    torch.testing.assert_close(p_cam[:, :2], torch.zeros(16, 2, dtype=torch.float64))
    torch.testing.assert_close(p_cam[:, 2], (target - eye).norm(dim=-1))


def test_opengl_opencv_flip():
    T = _random_poses(7)
    gl = opencv_to_opengl(T)
    torch.testing.assert_close(opengl_to_opencv(gl), T, rtol=0, atol=0)
    torch.testing.assert_close(gl[:, :3, 0], T[:, :3, 0])
    torch.testing.assert_close(gl[:, :3, 1], -T[:, :3, 1])
    torch.testing.assert_close(gl[:, :3, 2], -T[:, :3, 2])
    torch.testing.assert_close(gl[:, :3, 3], T[:, :3, 3])
    assert bool(is_rotation(gl[:, :3, :3]).all())
    # an OpenGL camera looks down its -z: at the origin looking along world -z
    gl_cam = torch.eye(4)
    cv = opengl_to_opencv(gl_cam)
    torch.testing.assert_close(cv[:3, 2], torch.tensor([0.0, 0.0, -1.0]))


def test_is_rotation_rejects_non_rotations():
    R = random_rotation(5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert bool(is_rotation(R).all())
    reflection = R * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert not bool(is_rotation(reflection).any())
    assert not bool(is_rotation(R * 1.01).any())
    assert not bool(is_rotation(R + 1e-3, atol=1e-5).any())
