"""Zoom stack rendering (Powers of Ten Alg. 1): exact cross-level agreement, Π_noise statistics."""

import math

import pytest
import torch

from models.zoom import (
    ZoomStack,
    centre_mask,
    crop_centre,
    cross_scale_psnr,
    downsample,
    downsample_k,
    footprint,
    max_depth,
    noise_gain,
    render_image,
    render_images,
    render_noise,
    render_noises,
    step_kernel,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _alg1(layers, i, p, gain):
    """Literal Algorithm 1: start from L_i, paste D_{j-i}(L_j) into the M_{j-i} footprint."""
    N, _, H, W = layers.shape
    x = layers[i].clone()
    for j in range(i + 1, N):
        k = j - i
        M = centre_mask(H, W, p, k)
        (oh, sh), (ow, sw) = footprint(H, p, k), footprint(W, p, k)
        padded = torch.zeros_like(x)
        padded[:, oh : oh + sh, ow : ow + sw] = gain**k * downsample_k(layers[j], p, k)
        x = torch.where(M, padded, x)
    return x


def test_step_kernel_and_noise_gain():
    w2 = step_kernel(2, dtype=torch.float64)
    torch.testing.assert_close(w2, torch.full((2,), 0.5, dtype=torch.float64))  # box
    assert noise_gain(2) == pytest.approx(2.0)  # the paper's p_j / p_i per step
    w4 = step_kernel(4, dtype=torch.float64)
    assert w4.sum().item() == pytest.approx(1.0) and torch.equal(w4, w4.flip(0))
    assert w4[1] > w4[0]  # Gaussian, not box
    assert noise_gain(4) == pytest.approx(1 / (w4 @ w4).item()) and noise_gain(4) < 4


def test_footprint_and_depth():
    assert footprint(64, 2, 1) == (16, 32) and footprint(64, 2, 5) == (31, 2)
    assert max_depth(64, 64, 2) == 5 and max_depth(64, 64, 4) == 2 and max_depth(128, 96, 4) == 2
    with pytest.raises(ValueError):
        footprint(64, 4, 3)  # a 1-px footprint at offset 31.5
    with pytest.raises(ValueError):
        ZoomStack(torch.zeros(3, 1, 30, 30), p=4)


@pytest.mark.parametrize("p,N,H", [(2, 5, 32), (4, 3, 32)])
def test_recursion_is_algorithm_1(p, N, H):
    layers = torch.randn(N, 3, H, H, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(N, 3, H, H, generator=torch.Generator().manual_seed(1))
    imgs, eps = render_images(layers, p), render_noises(noise, p)
    for i in range(N):
        torch.testing.assert_close(imgs[i], _alg1(layers, i, p, 1.0), rtol=0, atol=1e-6)
        torch.testing.assert_close(eps[i], _alg1(noise, i, p, noise_gain(p)), rtol=0, atol=1e-5)
        torch.testing.assert_close(render_image(layers, i, p), imgs[i], rtol=0, atol=0)
        torch.testing.assert_close(render_noise(noise, i, p), eps[i], rtol=0, atol=0)
    assert torch.equal(imgs[-1], layers[-1])


@pytest.mark.parametrize("p,N,H,W", [(2, 6, 64, 64), (4, 4, 64, 32), (2, 9, 32, 32)])
def test_render_level_matches_downsampled_finer_level_exactly(p, N, H, W):
    """Π(L; i) downsampled by p equals the centre footprint of Π(L; i-1) — exactly, also for a
    stack deeper than the resolution (N=9 at 32 px: footprints shrink below one pixel)."""
    stack = ZoomStack(torch.rand(N, 3, H, W, generator=torch.Generator().manual_seed(2)), p=p)
    imgs = stack.render_images()
    for i in range(1, N):
        assert torch.equal(downsample(imgs[i], p), crop_centre(imgs[i - 1], p, 1))
    assert torch.isinf(cross_scale_psnr(imgs, p)).all()
    # the outside of each footprint is the layer itself
    ring = ~centre_mask(H, W, p, 1)
    for i in range(N - 1):
        assert torch.equal(imgs[i][:, ring], stack.layers[i][:, ring])
    # batch dims are supported
    batched = render_images(torch.stack([stack.layers, stack.layers.flip(-1)]), p)
    torch.testing.assert_close(batched[0], imgs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("p", [2, 4])
def test_noise_rendering_is_unit_normal(p):
    """Π_noise(E; i) ~ N(0, I) per pixel: 4000 draws of a 4-level 16×16 stack (1024 px per
    level per draw). With n ≈ 10⁶ samples per level the standard errors are 1e-3 (mean) and
    1.4e-3 (variance); we allow 6 SE. Footprints (rescaled noise) are tested separately, and
    neighbouring pixels must be uncorrelated (|ρ| < 0.01)."""
    g = torch.Generator().manual_seed(3)
    N, H = 4, 16 if p == 2 else 32
    eps = render_noises(torch.randn(4000, N, 1, H, H, generator=g), p)  # [B, N, 1, H, H]
    for i in range(N):
        x = eps[:, i].double()
        n = x.numel()
        assert abs(x.mean().item()) < 6 / math.sqrt(n)
        assert abs(x.var().item() - 1) < 6 * math.sqrt(2 / n)
        if i < N - 1:
            inner = crop_centre(x, p, 1)  # made of rescaled finer noise
            m = inner.numel()
            assert abs(inner.var().item() - 1) < 6 * math.sqrt(2 / m)
        corr = (x[..., :, 1:] * x[..., :, :-1]).mean().item()
        assert abs(corr) < 0.01
    # without the rescaling the footprint's variance would be ‖w‖² (1/p² for p = 2)
    plain = render_images(torch.randn(2000, 2, 1, H, H, generator=g), p)
    w = step_kernel(p, dtype=torch.float64)
    expected = (w @ w).item() ** 2
    assert crop_centre(plain[:, 0], p, 1).var().item() == pytest.approx(expected, rel=0.02)
