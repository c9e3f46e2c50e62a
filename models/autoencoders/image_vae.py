"""SD-style 2D image VAE (diffusers ``AutoencoderKL``): spatial ×8, 4 latent channels.

An image ``[B, 3, H, W]`` (values in [-1, 1]) maps to latents ``[B, 4, H / 8, W / 8]``. Sizes:

- ``tiny``: 4 levels of (32, 32, 64, 64) channels, 1 layer per level (tests).
- ``small``: (64, 128, 256, 256), 2 layers per level (the platform's own).
- ``paper``: the SDXL VAE that PixArt-Σ (the frame model's prior) uses: (128, 256, 512, 512),
  2 layers, ``scaling_factor`` 0.13025; normally loaded pretrained with ``load_image_vae``.
"""

from __future__ import annotations

import os

import torch
from diffusers import AutoencoderKL

from ._common import load_vae_folder, vae_config

SPATIAL_COMPRESSION = 8

_BLOCKS = ("DownEncoderBlock2D", "UpDecoderBlock2D")

IMAGE_VAE_CONFIGS: dict[str, dict] = {
    "tiny": {
        "block_out_channels": (32, 32, 64, 64),
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "sample_size": 64,
        "scaling_factor": 1.0,
    },
    "small": {
        "block_out_channels": (64, 128, 256, 256),
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "sample_size": 256,
        "scaling_factor": 1.0,
    },
    "paper": {
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "sample_size": 1024,
        "scaling_factor": 0.13025,
    },
}


def image_vae_config(size: str, **overrides) -> dict:
    """The ``AutoencoderKL`` keyword config of ``size`` (tiny, small, paper)."""
    defaults = {
        "latent_channels": 4,
        "use_quant_conv": True,
        "use_post_quant_conv": True,
        "mid_block_add_attention": True,
    }
    return vae_config("image", IMAGE_VAE_CONFIGS, size, _BLOCKS, defaults, overrides)


def build_image_vae(size: str = "tiny", **overrides) -> AutoencoderKL:
    """A randomly initialised image VAE of ``size`` (weights from the global torch RNG)."""
    return AutoencoderKL(**image_vae_config(size, **overrides))


def load_image_vae(path: str | os.PathLike, dtype: torch.dtype | None = None) -> AutoencoderKL:
    """A pretrained image VAE from a local diffusers folder (e.g. PixArt-Σ's ``vae/``)."""
    return load_vae_folder(AutoencoderKL, path, dtype)
