"""The frame model's diffusion schedule (PixArt-Σ's DDPM: 1000 steps, linear β 1e-4 → 0.02),
ε- or v-prediction, deterministic DDIM sampling and biased timestep sampling (WorldFM §2.4.1).

``x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε`` (WorldFM §2.2); ``v = √ᾱ_t ε − √(1 − ᾱ_t) x₀``. Timesteps are
integers in ``[0, T − 1]``; DDIM with ``trailing`` spacing starts at ``T − 1`` (999) and its last
step lands on x₀ (ᾱ = 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import pairwise

import torch
from torch import Tensor

PREDICTION_TYPES = ("epsilon", "v_prediction")


@dataclass
class DiffusionSchedule:
    """Noise schedule and prediction parameterisation (defaults: PixArt-Σ's, ε-prediction)."""

    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"
    prediction_type: str = "epsilon"
    alphas_cumprod: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}")
        T = self.num_train_timesteps
        if self.beta_schedule == "linear":
            betas = torch.linspace(self.beta_start, self.beta_end, T, dtype=torch.float64)
        elif self.beta_schedule == "scaled_linear":
            betas = torch.linspace(self.beta_start**0.5, self.beta_end**0.5, T, dtype=torch.float64)
            betas = betas**2
        else:
            raise ValueError(f"unknown beta_schedule {self.beta_schedule!r}")
        self.alphas_cumprod = torch.cumprod(1.0 - betas, 0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("alphas_cumprod")
        return d

    def _coeffs(self, t: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
        """√ᾱ_t, √(1 − ᾱ_t) as ``[B, 1, 1, 1]`` in ``ref``'s dtype; ``t < 0`` means ᾱ = 1."""
        a = self.alphas_cumprod.to(t.device)[t.clamp(min=0).long()]
        a = torch.where(t < 0, torch.ones_like(a), a)
        shape = (-1,) + (1,) * (ref.ndim - 1)
        return a.sqrt().view(shape).to(ref.dtype), (1 - a).sqrt().view(shape).to(ref.dtype)

    def coeffs_at(self, t: int) -> tuple[float, float]:
        """√ᾱ_t, √(1 − ᾱ_t) of one fixed timestep as Python floats (``t < 0``: ᾱ = 1)."""
        a = 1.0 if t < 0 else float(self.alphas_cumprod[int(t)])
        return a**0.5, (1.0 - a) ** 0.5

    def split_with(
        self, x_t: Tensor, pred: Tensor, a: float | Tensor, s: float | Tensor
    ) -> tuple[Tensor, Tensor]:
        """``split`` given ``√ᾱ_t, √(1 − ᾱ_t)``: tensors ``[B, 1, …]``, or the Python floats of
        ``coeffs_at(t)``, which samplers with fixed timesteps look up once and compiled graphs
        bake in as constants."""
        if self.prediction_type == "epsilon":
            return (x_t - s * pred) / a, pred
        return a * x_t - s * pred, s * x_t + a * pred

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """``x_t`` for clean ``x0 [B, ...]``, ``noise``, timesteps ``t [B]``."""
        a, s = self._coeffs(t, x0)
        return a * x0 + s * noise

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """The regression target of the prediction type (ε or v)."""
        if self.prediction_type == "epsilon":
            return noise
        a, s = self._coeffs(t, x0)
        return a * noise - s * x0

    def split(self, x_t: Tensor, pred: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(x̂₀, ε̂)`` from a model prediction at ``x_t``."""
        return self.split_with(x_t, pred, *self._coeffs(t, x_t))

    def to_eps(self, x_t: Tensor, pred: Tensor, t: Tensor) -> Tensor:
        return self.split(x_t, pred, t)[1]

    def ddim_timesteps(self, steps: int) -> list[int]:
        """``steps`` timesteps, trailing spacing: ``[T−1, ..., T/steps − 1]``."""
        T = self.num_train_timesteps
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be in [1, {T}], got {steps}")
        return [round(T - i * T / steps) - 1 for i in range(steps)]

    def ddim_step(self, x_t: Tensor, pred: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
        """Deterministic DDIM (η = 0) from ``t`` to ``t_next`` (``-1``: to x₀)."""
        x0, eps = self.split(x_t, pred, t)
        return self.add_noise(x0, eps, t_next)


Denoiser = Callable[[Tensor, Tensor], Tensor]


@torch.no_grad()
def ddim_sample(
    denoise: Denoiser, noise: Tensor, schedule: DiffusionSchedule, steps: int
) -> Tensor:
    """Deterministic DDIM from ``noise [B, ...]`` (taken as ``x_{T−1}``); ``denoise(x_t, t [B])``
    returns the model prediction. Returns x₀."""
    x = noise
    ts = [*schedule.ddim_timesteps(steps), -1]
    B = noise.shape[0]
    for t, t_next in pairwise(ts):
        tt = torch.full((B,), t, device=x.device, dtype=torch.long)
        pred = denoise(x, tt)
        x = schedule.ddim_step(x, pred, tt, torch.full_like(tt, t_next))
    return x


@dataclass
class TimestepSampler:
    """Training timesteps in ``[0, T − 1]``, biased toward high noise (WorldFM §2.4.1 "noise schedule
    biasing"; the paper gives no distribution, so it is configurable).

    kind: "uniform"; "logit_normal": ``t/T = sigmoid(N(mean, std²))`` (mean > 0 favours high t);
    "beta": ``t/T ~ Beta(a, b)`` (a > b favours high t); "power": ``t/T = u^(1/(1+power))``
    (density ∝ (t/T)^power).
    """

    kind: str = "logit_normal"
    mean: float = 0.5
    std: float = 1.0
    a: float = 2.0
    b: float = 1.0
    power: float = 1.0
    num_train_timesteps: int = 1000

    def __post_init__(self) -> None:
        if self.kind not in ("uniform", "logit_normal", "beta", "power"):
            raise ValueError(f"unknown timestep sampling kind {self.kind!r}")

    def __call__(self, n: int, device=None, generator: torch.Generator | None = None) -> Tensor:
        """``[n]`` int64 timesteps."""
        T = self.num_train_timesteps
        if self.kind == "uniform":
            return torch.randint(0, T, (n,), generator=generator).to(device)
        if self.kind == "logit_normal":
            z = torch.randn(n, generator=generator) * self.std + self.mean
            u = torch.sigmoid(z)
        elif self.kind == "beta":
            # Beta(a, b) by the Gamma construction, with the generator
            u = _beta(n, self.a, self.b, generator)
        else:
            u = torch.rand(n, generator=generator) ** (1.0 / (1.0 + self.power))
        return (u * T).long().clamp(0, T - 1).to(device)

    def mean_fraction(self, samples: int = 20000) -> float:
        """Monte-Carlo mean of ``t / T`` (documentation and tests)."""
        g = torch.Generator().manual_seed(0)
        return float(self(samples, generator=g).float().mean() / self.num_train_timesteps)


def _beta(n: int, a: float, b: float, generator: torch.Generator | None) -> Tensor:
    """Beta(a, b) samples via inverse-CDF on a fine grid (exact enough for timestep sampling)."""
    grid = torch.linspace(0.0, 1.0, 4097, dtype=torch.float64)[1:-1]
    logpdf = (a - 1) * grid.log() + (b - 1) * (1 - grid).log()
    cdf = torch.cumsum((logpdf - logpdf.max()).exp(), 0)
    cdf = cdf / cdf[-1]
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    idx = torch.searchsorted(cdf, u).clamp(max=len(grid) - 1)
    return grid[idx].float()
