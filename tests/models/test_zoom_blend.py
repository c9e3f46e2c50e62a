"""Multi-resolution (Laplacian) blending of zoom-level observations (Powers of Ten §4.2)."""

import pytest
import torch

from models.zoom import (
    blend_multires,
    blend_naive,
    collapse,
    crop_centre,
    downsample_k,
    laplacian_pyramid,
    render_images,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _highpass_energy(x):
    return (x - torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)).square().mean()


@pytest.mark.parametrize("p", [2, 4])
def test_laplacian_pyramid_collapses_exactly(p):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    bands = laplacian_pyramid(x, p, 2)
    assert [b.shape[-1] for b in bands] == [32, 32 // p, 32 // p**2]
    torch.testing.assert_close(collapse(bands, p), x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("p,N,H", [(2, 6, 64), (4, 4, 64), (2, 8, 32)])
def test_blending_reproduces_consistent_observations(p, N, H):
    """Observations that agree (renders of one stack) come back unchanged: layers = observations,
    and rendering the blended stack reproduces them. N=8 at 32 px: deeper than the footprints."""
    obs = render_images(torch.rand(N, 3, H, H, generator=torch.Generator().manual_seed(1)), p)
    layers = blend_multires(obs, p)
    torch.testing.assert_close(layers, obs, rtol=0, atol=1e-5)
    torch.testing.assert_close(render_images(layers, p), obs, rtol=0, atol=1e-5)
    # batch dims
    both = blend_multires(torch.stack([obs, obs]), p)
    torch.testing.assert_close(both[1], obs, rtol=0, atol=1e-5)


def test_naive_averaging_blurs_what_multires_keeps():
    """Naive pixel averaging of the same consistent observations loses fine detail."""
    p, N = 2, 4
    obs = render_images(torch.rand(N, 3, 32, 32, generator=torch.Generator().manual_seed(2)), p)
    naive = blend_naive(obs, p)
    torch.testing.assert_close(naive[0], obs[0])  # level 0 has a single observation
    for i in range(1, N):
        assert _highpass_energy(naive[i]) < 0.8 * _highpass_energy(obs[i])
        # but the coarse content is kept: 16 × 16 block means agree to a few %
        low = downsample_k(naive[i], p, 4)
        torch.testing.assert_close(low, downsample_k(obs[i], p, 4), rtol=0, atol=0.03)


def test_blending_fuses_bands_of_inconsistent_observations():
    """Two levels that disagree: the fine layer keeps its own top band (only it can represent
    it) and averages both observations' coarser bands. Collapsing is linear, so L_1 is the mean
    of x_1 and of x_1's top band on the coarse crop's pyramid. L_0 (seen by x_0 only) is x_0."""
    p = 2
    g = torch.Generator().manual_seed(3)
    obs = torch.randn(2, 1, 16, 16, generator=g)
    layers = blend_multires(obs, p)
    fine_bands = laplacian_pyramid(obs[1], p, 4)
    coarse_bands = laplacian_pyramid(crop_centre(obs[0], p, 1), p, 3)
    mixed = collapse([fine_bands[0], *coarse_bands], p)
    torch.testing.assert_close(layers[1], (obs[1] + mixed) / 2, rtol=0, atol=1e-5)
    torch.testing.assert_close(layers[0], obs[0], rtol=0, atol=1e-6)
    # the blended fine layer sits between the two observations in the overlap's low band
    low = lambda x: downsample_k(x, p, 1)  # noqa: E731
    between = (low(layers[1]) - low(obs[1])) * (low(layers[1]) - crop_centre(obs[0], p, 1))
    assert (between <= 1e-4).float().mean() > 0.7
