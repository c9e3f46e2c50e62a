"""Frames <-> CogVideoX VAE latents, and the I2V image-conditioning latents.

``vae`` is a diffusers ``AutoencoderKLCogVideoX`` (or anything with its ``encode(x).latent_dist``,
``decode(z).sample`` and ``config.scaling_factor``). Frames are ``[B, F, 3, H, W]`` in [0, 1]
here and [-1, 1] inside the VAE (converted only in this module); latents are
``[B, C, T', h, w]`` with ``T' = 1 + (F - 1) / 4``, ``h = H / 8``, scaled as
``(z - shift_factor) · scaling_factor`` (CogVideoX: no shift, ``scaling_factor`` 0.7 for 5B).
The CogVideoX decoder returns ``4(T' - 1) + 1`` frames only for odd ``T'`` (``F = 8k + 1``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _scale(vae) -> float:
    return float(vae.config.scaling_factor)


def _shift(vae) -> float:
    return float(getattr(vae.config, "shift_factor", None) or 0.0)


def _vae_dtype(vae) -> torch.dtype:
    return next(vae.parameters()).dtype


def encode_video(vae, frames: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``[B, F, 3, H, W]`` in [0, 1] -> scaled latents ``[B, C, T', h, w]`` (posterior sample)."""
    x = frames.permute(0, 2, 1, 3, 4).to(_vae_dtype(vae)) * 2.0 - 1.0
    z = vae.encode(x).latent_dist.sample(generator)
    return (z - _shift(vae)) * _scale(vae)


def image_condition_latents(
    vae,
    image: Tensor,
    num_latent_frames: int,
    noise_sigma: Tensor | None = None,
    generator: torch.Generator | None = None,
    sample: bool = True,
) -> Tensor:
    """CogVideoX I2V conditioning: ``image [B, 3, H, W]`` in [0, 1] -> ``[B, C, T', h, w]`` with
    the image latent in frame 0 and zeros after.

    noise_sigma ``[B]``: Gaussian noise added to the image in [-1, 1] before encoding (the
    training-time augmentation of the CogVideoX I2V recipe); None at inference.
    sample: draw from the VAE posterior (training) or take its mode (deterministic inference).
    """
    x = image.to(_vae_dtype(vae)) * 2.0 - 1.0
    if noise_sigma is not None:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x + noise * noise_sigma.to(x).view(-1, 1, 1, 1)
    posterior = vae.encode(x.unsqueeze(2)).latent_dist
    z = posterior.sample(generator) if sample else posterior.mode()  # [B, C, 1, h, w]
    if getattr(vae.config, "invert_scale_latents", False):  # CogVideoX 1.5 quirk (as diffusers)
        z = z / _scale(vae)
    else:
        z = (z - _shift(vae)) * _scale(vae)
    return pad_image_latents(z, num_latent_frames)


def pad_image_latents(image_latent: Tensor, num_latent_frames: int) -> Tensor:
    """``[B, C, 1, h, w]`` -> ``[B, C, T', h, w]``: zeros after the first latent frame."""
    B, C, _, h, w = image_latent.shape
    pad = image_latent.new_zeros(B, C, num_latent_frames - 1, h, w)
    return torch.cat([image_latent[:, :, :1], pad], dim=2)


def decode_latents(vae, latents: Tensor) -> Tensor:
    """Scaled latents ``[B, C, T', h, w]`` -> frames ``[B, F, 3, H, W]`` in [0, 1]."""
    if latents.shape[2] > 1 and latents.shape[2] % 2 == 0:
        raise ValueError(f"{latents.shape[2]} latent frames: CogVideoX decodes odd counts only")
    z = latents.to(_vae_dtype(vae)) / _scale(vae) + _shift(vae)
    x = vae.decode(z).sample  # [B, 3, F, H, W]
    return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 1, 3, 4)


def num_latent_frames(num_frames: int, temporal_compression: int = 4) -> int:
    """``F = 4k + 1`` -> ``k + 1``; ValueError otherwise."""
    if num_frames < 1 or (num_frames - 1) % temporal_compression:
        raise ValueError(f"num_frames must be {temporal_compression}k + 1, got {num_frames}")
    return (num_frames - 1) // temporal_compression + 1
