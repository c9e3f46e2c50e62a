"""DDPM schedule for ε-prediction models: ``z_t = α_t x + σ_t ε``, ``α_t = √ᾱ_t``, ``σ_t = √(1-ᾱ_t)``.

``step`` is ancestral DDPM sampling over a (possibly strided) timestep list, with the posterior
``q(z_s | z_t, x)`` between consecutive timesteps ``t > s`` (fixed-small variance). The step after
the last timestep goes to ``s = -1`` (``ᾱ = 1``), where ``z_{-1} = x``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class DDPMSchedule:
    """Noise schedule from ``betas`` ``[T]`` (training timesteps ``0 … T-1``)."""

    def __init__(self, betas: Tensor):
        self.betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)

    @classmethod
    def make(
        cls,
        kind: str = "linear",
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> DDPMSchedule:
        """``linear`` (DDPM, PixArt) or ``scaled_linear`` (Stable Diffusion) betas."""
        T = num_train_timesteps
        if kind == "linear":
            betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        elif kind == "scaled_linear":
            betas = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2
        else:
            raise ValueError(f"beta schedule must be 'linear' or 'scaled_linear', got {kind!r}")
        return cls(betas)

    @property
    def num_train_timesteps(self) -> int:
        return len(self.betas)

    def timesteps(self, num_steps: int) -> Tensor:
        """``[S]`` long, descending from ``T-1`` to 0, evenly spaced."""
        T = self.num_train_timesteps
        if not 1 <= num_steps <= T:
            raise ValueError(f"num_steps must be in [1, {T}], got {num_steps}")
        return torch.linspace(T - 1, 0, num_steps, dtype=torch.float64).round().long()

    def alpha_bar(self, t: int) -> float:
        """``ᾱ_t``; ``t = -1`` -> 1 (clean)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def alpha_sigma(self, t: int) -> tuple[float, float]:
        """``(α_t, σ_t)``."""
        ab = self.alpha_bar(t)
        return ab**0.5, (1.0 - ab) ** 0.5

    def predict_x0(self, z: Tensor, eps: Tensor, t: int) -> Tensor:
        """``x̂ = (z - σ_t ε) / α_t``."""
        a, s = self.alpha_sigma(t)
        return (z - s * eps) / a

    def step(self, z: Tensor, x0: Tensor, t: int, s: int, noise: Tensor | None) -> Tensor:
        """Sample ``z_s ~ q(z_s | z_t = z, x = x0)`` for ``s < t`` (``noise`` ~ N(0, I); may be
        None only when ``s = -1``)."""
        ab_t, ab_s = self.alpha_bar(t), self.alpha_bar(s)
        a_ts = ab_t / ab_s  # ᾱ_t / ᾱ_s = ∏ (1-β) over (s, t]
        beta_ts = 1.0 - a_ts
        c_x = ab_s**0.5 * beta_ts / (1.0 - ab_t)
        c_z = a_ts**0.5 * (1.0 - ab_s) / (1.0 - ab_t)
        var = (1.0 - ab_s) / (1.0 - ab_t) * beta_ts
        out = c_x * x0 + c_z * z
        if var > 0:
            if noise is None:
                raise ValueError("noise is needed for a step to s >= 0")
            out = out + var**0.5 * noise
        return out
