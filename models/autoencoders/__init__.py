"""Autoencoders (torch + diffusers): the CogVideoX-style video VAE (temporal ×4, spatial ×8), the
SD-style image VAE (×8), pixel ↔ latent helpers, and a pretrained-free perceptual loss."""

from .image_vae import IMAGE_VAE_CONFIGS, build_image_vae, image_vae_config, load_image_vae
from .latents import (
    decode,
    decode_unscaled,
    encode,
    estimate_scaling_factor,
    from_model_range,
    latent_num_frames,
    latent_posterior,
    model_to_pixels,
    pixels_to_model,
    scale_latents,
    to_model_range,
    unscale_latents,
)
from .perceptual import PyramidPerceptualLoss, laplacian_pyramid, ssim
from .video_vae import VIDEO_VAE_CONFIGS, build_video_vae, load_video_vae, video_vae_config

__all__ = [
    "IMAGE_VAE_CONFIGS",
    "VIDEO_VAE_CONFIGS",
    "PyramidPerceptualLoss",
    "build_image_vae",
    "build_video_vae",
    "decode",
    "decode_unscaled",
    "encode",
    "estimate_scaling_factor",
    "from_model_range",
    "image_vae_config",
    "laplacian_pyramid",
    "latent_num_frames",
    "latent_posterior",
    "load_image_vae",
    "load_video_vae",
    "model_to_pixels",
    "pixels_to_model",
    "scale_latents",
    "ssim",
    "to_model_range",
    "unscale_latents",
    "video_vae_config",
]
