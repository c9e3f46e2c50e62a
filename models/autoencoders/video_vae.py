"""CogVideoX-style 3D video VAE (diffusers ``AutoencoderKLCogVideoX``): temporal ×4, spatial ×8.

A clip of ``F = 4k + 1`` frames ``[B, 3, F, H, W]`` (diffusers layout, values in [-1, 1]) maps to
latents ``[B, C, 1 + (F - 1) / 4, H / 8, W / 8]``: the first frame is kept on its own (causal
3D convolutions), the remaining ``4k`` frames are compressed ×4 in time. Sizes:

- ``tiny``: 4 levels of (16, 32, 32, 64) channels, 1 layer per level, 8 latent channels (tests;
  ~2M parameters).
- ``small``: (64, 128, 128, 256), 2 layers per level, 16 latent channels (the platform's own).
- ``paper``: CogVideoX-5B's VAE (128, 256, 256, 512), 3 layers, 16 latent channels,
  ``scaling_factor`` 0.7; normally loaded pretrained with ``load_video_vae``.
"""

from __future__ import annotations

import os

import torch
from diffusers import AutoencoderKLCogVideoX

from ._common import load_vae_folder, vae_config

TEMPORAL_COMPRESSION = 4
SPATIAL_COMPRESSION = 8

_BLOCKS = ("CogVideoXDownBlock3D", "CogVideoXUpBlock3D")

VIDEO_VAE_CONFIGS: dict[str, dict] = {
    "tiny": {
        "block_out_channels": (16, 32, 32, 64),
        "layers_per_block": 1,
        "latent_channels": 8,
        "norm_num_groups": 8,
        "sample_height": 64,
        "sample_width": 64,
        "scaling_factor": 1.0,
    },
    "small": {
        "block_out_channels": (64, 128, 128, 256),
        "layers_per_block": 2,
        "latent_channels": 16,
        "norm_num_groups": 32,
        "sample_height": 256,
        "sample_width": 256,
        "scaling_factor": 1.0,
    },
    "paper": {
        "block_out_channels": (128, 256, 256, 512),
        "layers_per_block": 3,
        "latent_channels": 16,
        "norm_num_groups": 32,
        "sample_height": 480,
        "sample_width": 720,
        "scaling_factor": 0.7,
    },
}


def video_vae_config(size: str, **overrides) -> dict:
    """The ``AutoencoderKLCogVideoX`` keyword config of ``size`` (tiny, small, paper)."""
    defaults = {
        "norm_eps": 1e-6,
        "temporal_compression_ratio": TEMPORAL_COMPRESSION,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    }
    return vae_config("video", VIDEO_VAE_CONFIGS, size, _BLOCKS, defaults, overrides)


def build_video_vae(size: str = "tiny", **overrides) -> AutoencoderKLCogVideoX:
    """A randomly initialised video VAE of ``size`` (weights from the global torch RNG)."""
    return AutoencoderKLCogVideoX(**video_vae_config(size, **overrides))


def load_video_vae(
    path: str | os.PathLike, dtype: torch.dtype | None = None
) -> AutoencoderKLCogVideoX:
    """A pretrained video VAE from a local diffusers folder (e.g. CogVideoX-5B's ``vae/``)."""
    return load_vae_folder(AutoencoderKLCogVideoX, path, dtype)
