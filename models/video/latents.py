"""The CogVideoX I2V image-conditioning latents.

Pixels ↔ latents (the [0, 1] ↔ [-1, 1] conversion, layouts, scaling and the odd-``T'`` decode
check) live in ``models.autoencoders.latents``; this module only builds what the video model adds
on top: the first frame's latent followed by zero latent frames.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.autoencoders.latents import latent_posterior, scale_latents


def image_condition_latents(
    vae: nn.Module,
    image: Tensor,
    num_latent_frames: int,
    noise_sigma: Tensor | None = None,
    generator: torch.Generator | None = None,
    sample: bool = True,
) -> Tensor:
    """CogVideoX I2V conditioning: ``image [B, 3, H, W]`` in [0, 1] -> ``[B, C, T', h, w]`` with
    the image latent in frame 0 and zeros after.

    noise_sigma ``[B]``: Gaussian noise of std ``noise_sigma`` in the VAE's [-1, 1] range (so
    ``noise_sigma / 2`` in [0, 1]) added to the image before encoding (the training-time
    augmentation of the CogVideoX I2V recipe); None at inference.
    sample: draw from the VAE posterior (training) or take its mode (deterministic inference).
    """
    frames = image.unsqueeze(1)  # [B, 1, 3, H, W]: a one-frame clip
    if noise_sigma is not None:
        noise = torch.randn(
            frames.shape, generator=generator, device=frames.device, dtype=frames.dtype
        )
        frames = frames + noise * (0.5 * noise_sigma.to(frames)).view(-1, 1, 1, 1, 1)
    posterior = latent_posterior(vae, frames)
    z = posterior.sample(generator) if sample else posterior.mode()  # [B, C, 1, h, w]
    if getattr(vae.config, "invert_scale_latents", False):  # CogVideoX 1.5 quirk (as diffusers)
        z = z / float(vae.config.scaling_factor)
    else:
        z = scale_latents(vae, z)
    return pad_image_latents(z, num_latent_frames)


def pad_image_latents(image_latent: Tensor, num_latent_frames: int) -> Tensor:
    """``[B, C, 1, h, w]`` -> ``[B, C, T', h, w]``: zeros after the first latent frame."""
    B, C, _, h, w = image_latent.shape
    pad = image_latent.new_zeros(B, C, num_latent_frames - 1, h, w)
    return torch.cat([image_latent[:, :, :1], pad], dim=2)
