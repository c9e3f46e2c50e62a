import pytest
import torch

from models.geometry import (
    K_from_fov,
    camera_rays,
    depth_to_ray_distance,
    make_K,
    make_se3,
    pixel_grid,
    project,
    random_rotation,
    ray_distance_to_depth,
    unproject,
)


def _setup(dtype, batch=(2, 3), H=6, W=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    fx = 50 + 20 * torch.rand(batch, generator=g, dtype=dtype)
    fy = 50 + 20 * torch.rand(batch, generator=g, dtype=dtype)
    cx = W / 2 + torch.randn(batch, generator=g, dtype=dtype)
    cy = H / 2 + torch.randn(batch, generator=g, dtype=dtype)
    K = make_K(fx, fy, cx, cy)
    R = random_rotation(*batch, generator=g, dtype=dtype)
    c2w = make_se3(R, torch.randn(*batch, 3, generator=g, dtype=dtype))
    depth = 0.5 + 4 * torch.rand(*batch, H, W, generator=g, dtype=dtype)
    return K, c2w, depth


def test_pixel_grid_centres():
    grid = pixel_grid(2, 3, dtype=torch.float64)
    assert grid.shape == (2, 3, 2)
    assert grid[0, 0].tolist() == [0.5, 0.5]
    assert grid[1, 2].tolist() == [2.5, 1.5]
    assert grid[..., 0].tolist() == [[0.5, 1.5, 2.5]] * 2


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_project_unproject_round_trip(dtype, atol):
    K, c2w, depth = _setup(dtype)
    H, W = depth.shape[-2:]
    points = unproject(depth, K, c2w)
    assert points.shape == (2, 3, H, W, 3) and points.dtype == dtype
    uv, z = project(points.flatten(-3, -2), K, c2w)
    assert uv.shape == (2, 3, H * W, 2) and z.shape == (2, 3, H * W)
    expected_uv = pixel_grid(H, W, dtype=dtype).reshape(-1, 2).expand_as(uv)
    torch.testing.assert_close(uv, expected_uv, rtol=0, atol=atol)
    torch.testing.assert_close(z, depth.flatten(-2), rtol=0, atol=atol)


def test_optical_axis_projects_to_principal_point():
    K = make_K(80.0, 90.0, 13.25, 7.75, dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    c2w = make_se3(
        random_rotation(generator=g, dtype=torch.float64),
        torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64),
    )
    axis_points = c2w[:3, 3] + torch.tensor([[1.0], [3.0]], dtype=torch.float64) * c2w[:3, 2]
    uv, z = project(axis_points, K, c2w)
    torch.testing.assert_close(uv, torch.tensor([[13.25, 7.75]] * 2, dtype=torch.float64))
    torch.testing.assert_close(z, torch.tensor([1.0, 3.0], dtype=torch.float64))
    # a point 1 unit right at depth 2 lands fx / 2 pixels right of cx (x right, y down)
    p = c2w[:3, 3] + 2 * c2w[:3, 2] + c2w[:3, 0] + c2w[:3, 1]
    uv, _ = project(p[None], K, c2w)
    torch.testing.assert_close(
        uv[0], torch.tensor([13.25 + 40.0, 7.75 + 45.0], dtype=torch.float64)
    )


def test_centre_pixel_of_odd_image_is_on_axis():
    K = K_from_fov(70.0, H=5, W=7, dtype=torch.float64)
    _, dirs = camera_rays(K, torch.eye(4, dtype=torch.float64), 5, 7)
    torch.testing.assert_close(dirs[2, 3], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    assert dirs[2, 4, 0] > 0 and dirs[3, 3, 1] > 0


def test_camera_rays_hit_unprojected_points():
    K, c2w, depth = _setup(torch.float64)
    H, W = depth.shape[-2:]
    origins, dirs = camera_rays(K, c2w, H, W)
    assert origins.shape == dirs.shape == (2, 3, H, W, 3)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(2, 3, H, W, dtype=torch.float64))
    torch.testing.assert_close(origins, c2w[..., None, None, :3, 3].expand_as(origins))
    points = unproject(depth, K, c2w)
    dist = depth_to_ray_distance(depth, K)
    torch.testing.assert_close(origins + dist[..., None] * dirs, points)
    # rays point forward: positive component along the camera z axis
    assert bool(((dirs * c2w[..., None, None, :3, 2]).sum(-1) > 0).all())


def test_ray_distance_depth_conversion():
    K, c2w, depth = _setup(torch.float64)
    dist = depth_to_ray_distance(depth, K)
    points = unproject(depth, K, c2w)
    torch.testing.assert_close(dist, (points - c2w[..., None, None, :3, 3]).norm(dim=-1))
    torch.testing.assert_close(ray_distance_to_depth(dist, K), depth)
    assert bool((dist >= depth).all())
