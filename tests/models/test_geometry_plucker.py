import pytest
import torch

from models.geometry import (
    camera_rays,
    make_K,
    make_se3,
    plucker_rays,
    random_rotation,
    scale_K,
    unproject,
)

H, W = 16, 24


def _cameras(dtype=torch.float64, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    K = make_K(30.0 + torch.rand(n, generator=g, dtype=dtype), 28.0, 11.0, 9.0)
    R = random_rotation(n, generator=g, dtype=dtype)
    return K, make_se3(R, torch.randn(n, 3, generator=g, dtype=dtype) * 2)


def test_shape_and_channel_layout():
    K, c2w = _cameras()
    emb = plucker_rays(K, c2w, H, W)
    assert emb.shape == (3, 6, H, W) and emb.dtype == torch.float64
    origins, dirs = camera_rays(K, c2w, H, W)
    torch.testing.assert_close(emb[:, 3:].movedim(1, -1), dirs)
    torch.testing.assert_close(emb[:, :3].movedim(1, -1), torch.linalg.cross(origins, dirs))
    batched = plucker_rays(K.expand(2, 3, 3, 3), c2w.expand(2, 3, 4, 4), H, W, downsample=8)
    assert batched.shape == (2, 3, 6, H // 8, W // 8)


def test_direction_unit_and_moment_orthogonal():
    K, c2w = _cameras()
    emb = plucker_rays(K, c2w, H, W)
    moment, d = emb[:, :3], emb[:, 3:]
    torch.testing.assert_close(d.norm(dim=1), torch.ones(3, H, W, dtype=torch.float64))
    torch.testing.assert_close((moment * d).sum(1), torch.zeros(3, H, W, dtype=torch.float64))
    assert moment.abs().max() > 0.1


def test_moment_invariant_to_origin_sliding_along_ray():
    K, c2w = _cameras()
    origins, dirs = camera_rays(K, c2w, H, W)
    moment = plucker_rays(K, c2w, H, W)[:, :3].movedim(1, -1)
    lam = torch.linspace(-5, 5, H * W, dtype=torch.float64).reshape(H, W, 1)
    torch.testing.assert_close(torch.linalg.cross(origins + lam * dirs, dirs), moment)
    # a parallel ray through a different point has a different moment
    shifted = torch.linalg.cross(origins + 0.1 * c2w[:, None, None, :3, 0], dirs)
    assert (shifted - moment).norm(dim=-1).min() > 1e-3


def test_camera_at_origin_has_zero_moment():
    K, c2w = _cameras()
    c2w = c2w.clone()
    c2w[:, :3, 3] = 0
    emb = plucker_rays(K, c2w, H, W)
    assert emb[:, :3].abs().max().item() == 0.0
    torch.testing.assert_close(emb[:, 3:].norm(dim=1), torch.ones(3, H, W, dtype=torch.float64))


@pytest.mark.parametrize("f", [2, 8])
def test_latent_resolution_equals_scaled_K(f):
    K, c2w = _cameras()
    low = plucker_rays(K, c2w, H, W, downsample=f)
    ref = plucker_rays(scale_K(K, 1 / f), c2w, H // f, W // f)
    torch.testing.assert_close(low, ref, rtol=0, atol=1e-12)
    # rays pass through the centres of f x f pixel blocks: the mean of the block's z=1 points
    block_points = unproject(torch.ones(3, H, W, dtype=torch.float64), K, c2w)
    block_mean = block_points.unflatten(1, (H // f, f)).unflatten(3, (W // f, f)).mean((2, 4))
    d = torch.nn.functional.normalize(block_mean - c2w[:, None, None, :3, 3], dim=-1)
    torch.testing.assert_close(low[:, 3:].movedim(1, -1), d)


def test_downsample_must_divide():
    K, c2w = _cameras()
    with pytest.raises(ValueError):
        plucker_rays(K, c2w, 20, 24, downsample=8)
