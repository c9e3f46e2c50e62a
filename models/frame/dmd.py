"""Stage III — distribution matching distillation (DMD, Yin et al. 2024) of the frame model into a
few-step generator (WorldFM §2.5): 2 steps T → t_mid = 200 → 0 on the 1000-step schedule.

- ``FewStepSampler``: the generator's schedule. Each step predicts x̂₀ at ``t_k`` and moves to
  ``t_{k+1}`` by re-noising x̂₀ with the predicted ε (deterministic, DDIM η = 0, so noise → frame is
  a function, as the regression pairs need) or with fresh noise (``stochastic``, DMD2-style).
- Backward simulation (DMD2): a training step picks a step ``k``; its input ``x_{t_k}`` is produced
  by running the generator itself from pure noise through steps ``< k`` without gradients.
- ``distribution_matching_loss``: noise the generator's x̂₀ to a random ``t``, compare the real score
  (frozen stage-II model) and the fake score (trained on generator samples): gradient
  ``(x̂₀_fake − x̂₀_real) / mean|x̂₀ − x̂₀_real|``, loss ``½‖x̂₀ − sg(x̂₀ − grad)‖²``.
- ``fake_score_loss``: the fake score's denoising loss on (detached) generator samples.
- ``regression_loss`` on (noise, teacher output) pairs from the teacher's deterministic sampler
  (``make_teacher_pairs``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor

from .conditions import FrameCondition, cat_conditions
from .schedule import DiffusionSchedule, ddim_sample

Model = Callable[..., Tensor]  # model(x_t [B, C, h, w], t [B], cond, **kw) -> prediction

PAPER_TIMESTEPS = (999, 200)


class FewStepSampler:
    """Generator sampling over ``timesteps`` (default WorldFM's ``[999, 200]``; ``[999]``: 1 step)."""

    def __init__(
        self,
        schedule: DiffusionSchedule,
        timesteps: tuple[int, ...] | list[int] = PAPER_TIMESTEPS,
        stochastic: bool = False,
    ):
        ts = [int(t) for t in timesteps]
        if not ts or any(a <= b for a, b in pairwise(ts)) or ts[-1] < 0:
            raise ValueError(f"timesteps must be strictly decreasing and >= 0, got {ts}")
        if ts[0] >= schedule.num_train_timesteps:
            raise ValueError(
                f"timestep {ts[0]} outside the {schedule.num_train_timesteps}-step schedule"
            )
        self.schedule, self.timesteps, self.stochastic = schedule, ts, stochastic
        self._coeffs = [schedule.coeffs_at(t) for t in ts]  # Python floats: no lookups in graphs

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    def _t(self, k: int, x: Tensor) -> Tensor:
        return torch.full((x.shape[0],), self.timesteps[k], device=x.device, dtype=torch.long)

    def predict_x0(self, model: Model, x: Tensor, k: int, cond: FrameCondition, **kw) -> Tensor:
        """x̂₀ of the generator at ``x = x_{t_k}``."""
        pred = model(x, self._t(k, x), cond, **kw)
        return self.schedule.split_with(x, pred, *self._coeffs[k])[0]

    def step(
        self, model: Model, x: Tensor, k: int, cond: FrameCondition, **kw
    ) -> tuple[Tensor, Tensor | None]:
        """``(x̂₀, x_{t_{k+1}})`` from ``x = x_{t_k}`` (next is None after the last step)."""
        pred = model(x, self._t(k, x), cond, **kw)
        x0, eps = self.schedule.split_with(x, pred, *self._coeffs[k])
        if k + 1 == self.num_steps:
            return x0, None
        if self.stochastic:
            eps = torch.randn_like(x0)
        a, s = self._coeffs[k + 1]
        return x0, a * x0 + s * eps

    def simulate(self, model: Model, noise: Tensor, cond: FrameCondition, k: int, **kw) -> Tensor:
        """Backward simulation: ``x_{t_k}`` reached by the generator from ``noise`` (``k = 0``: the
        noise itself). Runs without gradients."""
        x = noise
        with torch.no_grad():
            for j in range(k):
                x = self.step(model, x, j, cond, **kw)[1]
        return x

    def sample(self, model: Model, noise: Tensor, cond: FrameCondition, **kw) -> Tensor:
        """All steps from ``noise`` (= x_T) → x̂₀ ``[B, C, h, w]`` (differentiable if grads are on)."""
        x = noise
        for k in range(self.num_steps):
            x0, x = self.step(model, x, k, cond, **kw)
        return x0


def _random_t(n: int, t_range: tuple[int, int], device, generator=None) -> Tensor:
    lo, hi = int(t_range[0]), int(t_range[1])
    return torch.randint(lo, hi + 1, (n,), generator=generator).to(device)


def distribution_matching_loss(
    x0: Tensor,
    cond: FrameCondition,
    real: Model,
    fake: Model,
    schedule: DiffusionSchedule,
    t_range: tuple[int, int] = (20, 980),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """DMD loss on generator samples ``x0 [B, C, h, w]`` (with grad). Real and fake scores run
    without gradients; the loss's gradient w.r.t. ``x0`` is exactly
    ``(x̂₀_fake − x̂₀_real) / mean|x0 − x̂₀_real| / numel``."""
    with torch.no_grad():
        t = _random_t(x0.shape[0], t_range, x0.device, generator)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        x_t = schedule.add_noise(x0.detach(), noise, t)
        real_x0 = schedule.split(x_t, real(x_t, t, cond), t)[0].float()
        fake_x0 = schedule.split(x_t, fake(x_t, t, cond), t)[0].float()
        norm = (x0.detach().float() - real_x0).abs().mean(dim=(1, 2, 3), keepdim=True)
        grad = torch.nan_to_num((fake_x0 - real_x0) / norm.clamp_min(1e-8))
    loss = 0.5 * F.mse_loss(x0.float(), (x0.detach().float() - grad))
    return loss, {"dm_grad_norm": grad.norm() / grad.numel() ** 0.5, "dm_t": t.float().mean()}


def fake_score_loss(
    fake: Model,
    x0: Tensor,
    cond: FrameCondition,
    schedule: DiffusionSchedule,
    t_range: tuple[int, int] = (0, 999),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Denoising loss of the fake score on generator samples ``x0`` (detached here)."""
    x0 = x0.detach()
    t = _random_t(x0.shape[0], t_range, x0.device, generator)
    noise = torch.randn(x0.shape, generator=generator).to(x0)
    pred = fake(schedule.add_noise(x0, noise, t), t, cond)
    return F.mse_loss(pred.float(), schedule.target(x0, noise, t).float())


def regression_loss(
    generator: Model, sampler: FewStepSampler, noise: Tensor, cond: FrameCondition, target: Tensor
) -> Tensor:
    """MSE between the generator's full few-step sample from ``noise`` and the teacher's output."""
    return F.mse_loss(sampler.sample(generator, noise, cond).float(), target.float())


@dataclass
class TeacherPairs:
    """(noise, teacher output) pairs with their conditions: ``noise``, ``output`` ``[P, C, h, w]``."""

    noise: Tensor
    output: Tensor
    conditions: FrameCondition

    def __len__(self) -> int:
        return self.noise.shape[0]

    def batch(self, idx) -> tuple[Tensor, Tensor, FrameCondition]:
        return self.noise[idx], self.output[idx], self.conditions.index(idx)


@torch.no_grad()
def make_teacher_pairs(
    teacher: Model,
    conditions: FrameCondition | list[FrameCondition],
    schedule: DiffusionSchedule,
    steps: int = 50,
    seed: int = 0,
    batch_size: int = 16,
) -> TeacherPairs:
    """Run the teacher's deterministic DDIM sampler (``steps``, from t = T−1) on seeded noise for
    every condition; returns the pairs (on CPU) for the regression loss."""
    cond = cat_conditions(conditions) if isinstance(conditions, list) else conditions
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(cond.reference.shape, generator=g)
    outputs = []
    for i in range(0, len(noise), batch_size):
        c = cond.index(slice(i, i + batch_size))
        z = noise[i : i + batch_size].to(c.reference)
        outputs.append(ddim_sample(lambda x, t, c=c: teacher(x, t, c), z, schedule, steps).cpu())
    return TeacherPairs(noise, torch.cat(outputs), cond.to("cpu"))
