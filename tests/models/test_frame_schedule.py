"""Diffusion schedule: PixArt-Σ's betas, ε/v conversions, DDIM, biased timestep sampling."""

import pytest
import torch
from diffusers import DDPMScheduler

from models.frame import DiffusionSchedule, TimestepSampler, ddim_sample

pytestmark = pytest.mark.usefixtures("one_thread")


def test_alphas_match_diffusers_ddpm_linear():
    ours = DiffusionSchedule()
    ref = DDPMScheduler(beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
    torch.testing.assert_close(
        ours.alphas_cumprod.float(), ref.alphas_cumprod, atol=1e-6, rtol=1e-5
    )
    x0, eps, t = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2), torch.tensor([0, 500, 999])
    torch.testing.assert_close(
        ours.add_noise(x0, eps, t), ref.add_noise(x0, eps, t), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_split_inverts_the_target(kind):
    s = DiffusionSchedule(prediction_type=kind)
    x0, eps = (
        torch.randn(4, 4, 2, 2, dtype=torch.float64),
        torch.randn(4, 4, 2, 2, dtype=torch.float64),
    )
    t = torch.tensor([3, 200, 600, 990])
    x_t = s.add_noise(x0, eps, t)
    x0_hat, eps_hat = s.split(x_t, s.target(x0, eps, t), t)
    torch.testing.assert_close(x0_hat, x0)
    torch.testing.assert_close(eps_hat, eps)
    torch.testing.assert_close(s.to_eps(x_t, s.target(x0, eps, t), t), eps)


def test_ddim_trailing_timesteps_and_oracle_sampling_recovers_x0():
    s = DiffusionSchedule()
    assert s.ddim_timesteps(4) == [999, 749, 499, 249]
    assert s.ddim_timesteps(1) == [999]
    x0 = torch.randn(2, 4, 3, 3, dtype=torch.float64)

    def oracle(x_t, t):  # the exact ε for the data point x0
        a = s.alphas_cumprod[t].view(-1, 1, 1, 1)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    out = ddim_sample(oracle, torch.randn_like(x0), s, steps=5)
    torch.testing.assert_close(out, x0)


def test_timestep_sampling_is_biased_toward_high_noise():
    uniform = TimestepSampler(kind="uniform").mean_fraction()
    assert uniform == pytest.approx(0.5, abs=0.01)
    assert TimestepSampler(kind="logit_normal", mean=0.5, std=1.0).mean_fraction() > 0.57
    assert TimestepSampler(kind="beta", a=2.0, b=1.0).mean_fraction() == pytest.approx(
        2 / 3, abs=0.01
    )
    assert TimestepSampler(kind="power", power=1.0).mean_fraction() == pytest.approx(
        2 / 3, abs=0.01
    )
    t = TimestepSampler()(1000)
    assert t.dtype == torch.long and int(t.min()) >= 0 and int(t.max()) <= 999
    with pytest.raises(ValueError):
        TimestepSampler(kind="cosine")


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_fixed_timestep_split_matches_the_tensor_one(prediction_type):
    """``split_with(coeffs_at(t))`` (the few-step sampler's graph-friendly path) is ``split``."""
    sched = DiffusionSchedule(prediction_type=prediction_type)
    g = torch.Generator().manual_seed(0)
    x, pred = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    for t in (999, 200, 0):
        want = sched.split(x, pred, torch.full((2,), t))
        got = sched.split_with(x, pred, *sched.coeffs_at(t))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert sched.coeffs_at(-1) == (1.0, 0.0)
