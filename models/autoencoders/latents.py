"""Pixels ↔ latents for the platform's VAEs: the one place where [0, 1] images become [-1, 1]
model inputs, where layouts change and where the latent scaling factor (and shift) is applied.

Layouts (platform side → diffusers side):
    video frames ``[B, F, 3, H, W]`` in [0, 1] → ``[B, 3, F, H, W]`` in [-1, 1]
        → latents ``[B, C, T', H / 8, W / 8]`` with ``T' = 1 + (F - 1) / 4`` (``F = 4k + 1``);
    images ``[B, 3, H, W]`` in [0, 1] → ``[B, 3, H, W]`` in [-1, 1] → latents ``[B, C, H / 8, W / 8]``.
The inputs' number of dimensions picks the layout (5: video, 4: image).

Scaled latents (what diffusion models see): ``(z - shift_factor) * scaling_factor``, ``shift_factor``
taken as 0 when the VAE's config has none. The CogVideoX decoder doubles frames per latent frame
pair and keeps a leading odd latent frame separate, so it returns ``1 + 4 (T' - 1)`` frames only for
odd ``T'`` (``F = 8k + 1``: 9, 17, ..., 49); ``decode`` refuses even ``T'``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import Tensor, nn

VIDEO_TEMPORAL_COMPRESSION = 4


def to_model_range(x: Tensor) -> Tensor:
    """[0, 1] → [-1, 1]."""
    return x * 2.0 - 1.0


def from_model_range(y: Tensor) -> Tensor:
    """[-1, 1] → [0, 1] (not clamped)."""
    return (y + 1.0) * 0.5


def pixels_to_model(x: Tensor) -> Tensor:
    """Frames ``[B, F, 3, H, W]`` → ``[B, 3, F, H, W]``, or images ``[B, 3, H, W]`` as they are;
    [0, 1] → [-1, 1]."""
    if x.ndim == 5:
        x = x.transpose(1, 2)
    elif x.ndim != 4:
        raise ValueError(f"expected frames [B, F, 3, H, W] or images [B, 3, H, W], got {x.shape}")
    return to_model_range(x)


def model_to_pixels(y: Tensor) -> Tensor:
    """Inverse of ``pixels_to_model`` (not clamped)."""
    if y.ndim == 5:
        y = y.transpose(1, 2)
    return from_model_range(y)


def latent_num_frames(
    num_frames: int, temporal_compression: int = VIDEO_TEMPORAL_COMPRESSION
) -> int:
    """``T' = 1 + (F - 1) / r``; ValueError unless ``F = r k + 1``."""
    if num_frames < 1 or (num_frames - 1) % temporal_compression:
        raise ValueError(
            f"{num_frames} frames: the video VAE needs F = {temporal_compression}k + 1 frames"
        )
    return 1 + (num_frames - 1) // temporal_compression


def latent_posterior(vae: nn.Module, x: Tensor) -> DiagonalGaussianDistribution:
    """The VAE's posterior over unscaled latents of pixels ``x`` (frames or images in [0, 1])."""
    if x.ndim == 5:
        latent_num_frames(x.shape[1], _temporal_compression(vae))
    model_in = pixels_to_model(x).to(dtype=_dtype(vae))
    return vae.encode(model_in).latent_dist


def decode_unscaled(vae: nn.Module, z: Tensor) -> Tensor:
    """Unscaled latents → pixels in the platform layout, [0, 1] range, not clamped."""
    if z.ndim == 5 and z.shape[2] > 1 and z.shape[2] % 2 == 0:
        raise ValueError(
            f"{z.shape[2]} latent frames: the CogVideoX decoder needs an odd count (F = 8k + 1)"
        )
    return model_to_pixels(vae.decode(z.to(dtype=_dtype(vae))).sample)


def scale_latents(vae: nn.Module, z: Tensor) -> Tensor:
    """Unscaled → scaled latents: ``(z - shift) * scaling_factor``."""
    scale, shift = _scale_shift(vae)
    return (z - shift) * scale


def unscale_latents(vae: nn.Module, latents: Tensor) -> Tensor:
    """Scaled → unscaled latents: ``latents / scaling_factor + shift``."""
    scale, shift = _scale_shift(vae)
    return latents / scale + shift


def encode(
    vae: nn.Module, x: Tensor, sample: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    """Pixels in [0, 1] (frames ``[B, F, 3, H, W]`` or images ``[B, 3, H, W]``) → scaled latents
    (``[B, C, T', h, w]`` or ``[B, C, h, w]``). ``sample``: draw from the posterior (with
    ``generator``) instead of taking its mode (deterministic; what cached latents use)."""
    posterior = latent_posterior(vae, x)
    z = posterior.sample(generator) if sample else posterior.mode()
    return scale_latents(vae, z)


def decode(vae: nn.Module, latents: Tensor, clamp: bool = True) -> Tensor:
    """Scaled latents → pixels in the platform layout (frames ``[B, F, 3, H, W]`` or images
    ``[B, 3, H, W]``), clamped to [0, 1] unless ``clamp`` is False."""
    pixels = decode_unscaled(vae, unscale_latents(vae, latents))
    return pixels.clamp(0.0, 1.0) if clamp else pixels


def estimate_scaling_factor(latents: Tensor | Iterable[Tensor]) -> float:
    """``1 / std`` of unscaled latents (one tensor or several, all elements pooled), so that
    scaled latents have unit standard deviation (LDM §4.3.2)."""
    if isinstance(latents, Tensor):
        latents = [latents]
    flat = torch.cat([z.detach().float().flatten() for z in latents])
    if flat.numel() < 2:
        raise ValueError("need at least two latent values to estimate a scaling factor")
    std = float(flat.std())
    if not std > 0.0:
        raise ValueError(f"latents have standard deviation {std}; cannot scale them")
    return 1.0 / std


def _scale_shift(vae: nn.Module) -> tuple[float, float]:
    config = vae.config
    return float(config.scaling_factor), float(getattr(config, "shift_factor", None) or 0.0)


def _temporal_compression(vae: nn.Module) -> int:
    return int(getattr(vae.config, "temporal_compression_ratio", VIDEO_TEMPORAL_COMPRESSION))


def _dtype(vae: nn.Module) -> torch.dtype:
    return next(vae.parameters()).dtype
