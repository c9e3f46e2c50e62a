"""DMD pieces: the few-step sampler's timesteps, backward simulation, the distribution-matching
gradient, the fake-score loss on detached samples, regression through both steps, teacher pairs."""

import pytest
import torch

from models.frame import (
    DiffusionSchedule,
    FewStepSampler,
    FrameCondition,
    TwoStepSampler,
    ddim_sample,
    distribution_matching_loss,
    fake_score_loss,
    make_teacher_pairs,
    regression_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def cond(B=2) -> FrameCondition:
    g = torch.Generator().manual_seed(0)
    K = torch.eye(3).expand(B, 3, 3)
    E = torch.eye(4).expand(B, 4, 4)
    return FrameCondition(
        torch.randn(B, 4, 4, 4, generator=g), torch.randn(B, 4, 4, 4, generator=g), K, E, K, E
    )


class Recorder(torch.nn.Module):
    """A toy denoiser ε̂ = a · x_t + b · reference that records the timesteps it is called at."""

    def __init__(self, a=0.5, b=0.1):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a))
        self.b = torch.nn.Parameter(torch.tensor(b))
        self.calls: list[list[int]] = []

    def forward(self, x_t, t, c, **kw):
        self.calls.append(t.tolist())
        return self.a * x_t + self.b * c.reference


def test_two_step_sampler_visits_exactly_999_then_200():
    s = DiffusionSchedule()
    model = Recorder()
    sampler = TwoStepSampler(s)
    out = sampler.sample(model, torch.randn(2, 4, 4, 4), cond())
    assert sampler.timesteps == [999, 200]
    assert [c[0] for c in model.calls] == [999, 200] and all(len(set(c)) == 1 for c in model.calls)
    assert out.shape == (2, 4, 4, 4)
    one = Recorder()
    FewStepSampler(s, [999]).sample(one, torch.randn(2, 4, 4, 4), cond())
    assert [c[0] for c in one.calls] == [999]
    mid = Recorder()
    FewStepSampler(s, [999, 400]).sample(mid, torch.randn(1, 4, 4, 4), cond(1))
    assert [c[0] for c in mid.calls] == [999, 400]
    for bad in ([200, 999], [1000], []):
        with pytest.raises(ValueError):
            FewStepSampler(s, bad)


def test_deterministic_step_renoises_with_the_predicted_eps():
    s = DiffusionSchedule()
    model, c = Recorder(), cond()
    noise = torch.randn(2, 4, 4, 4)
    sampler = TwoStepSampler(s)
    x0, x_mid = sampler.step(model, noise, 0, c)
    t0, t1 = torch.full((2,), 999), torch.full((2,), 200)
    eps = model(noise, t0, c)
    torch.testing.assert_close(x0, s.split(noise, eps, t0)[0])
    torch.testing.assert_close(x_mid, s.add_noise(x0, eps, t1))
    # backward simulation reaches the same x_{t_mid}, without building a graph
    sim = sampler.simulate(model, noise, c, 1)
    torch.testing.assert_close(sim, x_mid)
    assert not sim.requires_grad
    assert torch.equal(sampler.simulate(model, noise, c, 0), noise)


def test_dm_loss_gradient_is_the_normalised_score_difference():
    s = DiffusionSchedule()
    c = cond()
    x0 = torch.randn(2, 4, 4, 4, requires_grad=True)
    real, fake = Recorder(0.3, 0.2), Recorder(0.6, -0.1)
    g = torch.Generator().manual_seed(7)
    loss, _ = distribution_matching_loss(x0, c, real, fake, s, (20, 980), generator=g)
    loss.backward()
    # recompute the expected gradient with the same draws
    g = torch.Generator().manual_seed(7)
    t = torch.randint(20, 981, (2,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        x_t = s.add_noise(x0, noise, t)
        real_x0 = s.split(x_t, real(x_t, t, c), t)[0]
        fake_x0 = s.split(x_t, fake(x_t, t, c), t)[0]
        norm = (x0 - real_x0).abs().mean(dim=(1, 2, 3), keepdim=True)
        expected = (fake_x0 - real_x0) / norm / x0.numel()
    torch.testing.assert_close(x0.grad, expected)
    assert real.a.grad is None and fake.a.grad is None  # scores get no gradient from this loss
    # identical real and fake scores: no distribution-matching gradient
    x1 = x0.detach().clone().requires_grad_(True)
    same, _ = distribution_matching_loss(x1, c, real, real, s)
    same.backward()
    assert x1.grad.abs().max() == 0


def test_fake_score_loss_trains_the_fake_only_on_detached_samples():
    s = DiffusionSchedule()
    gen_param = torch.nn.Parameter(torch.ones(()))
    x0 = torch.randn(2, 4, 4, 4) * gen_param
    fake = Recorder()
    loss = fake_score_loss(fake, x0, cond(), s)
    loss.backward()
    assert fake.a.grad is not None and fake.a.grad.abs() > 0
    assert gen_param.grad is None


def test_regression_loss_backpropagates_through_both_steps():
    s = DiffusionSchedule()
    gen = Recorder()
    noise, c = torch.randn(2, 4, 4, 4), cond()
    target = torch.randn(2, 4, 4, 4)
    loss = regression_loss(gen, TwoStepSampler(s), noise, c, target)
    loss.backward()
    assert gen.a.grad is not None and gen.a.grad.abs() > 0
    assert [t[0] for t in gen.calls] == [999, 200]


def test_teacher_pairs_come_from_the_deterministic_sampler():
    s = DiffusionSchedule()
    teacher = Recorder(0.2, 0.05)
    c = cond(3)
    pairs = make_teacher_pairs(teacher, c, s, steps=4, seed=3, batch_size=2)
    again = make_teacher_pairs(teacher, [c.index(slice(0, 1)), c.index(slice(1, 3))], s, 4, seed=3)
    assert len(pairs) == 3 and torch.equal(pairs.noise, again.noise)
    torch.testing.assert_close(pairs.output, again.output)
    expected = ddim_sample(lambda x, t: teacher(x, t, c), pairs.noise, s, 4)
    torch.testing.assert_close(pairs.output, expected)
    n, _, pc = pairs.batch(torch.tensor([2, 0]))
    assert torch.equal(n[0], pairs.noise[2]) and torch.equal(pc.reference[1], c.reference[0])
