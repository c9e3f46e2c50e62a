"""Multi-scale zoom generation (Generative Powers of Ten §4): zoom stack, Π_image/Π_noise,
Laplacian multi-resolution blending, joint multi-scale DDPM sampling, photograph-based zoom and
continuous zoom videos. Torch only (diffusers only inside ``denoisers.load_diffusers_denoiser``)."""

from .blend import blend_multires, blend_naive, collapse, laplacian_pyramid
from .ddpm import DDPMSchedule
from .denoisers import DiffusersDenoiser, LoadedDenoiser, load_diffusers_denoiser
from .metrics import cross_scale_psnr, seam_ratio
from .photo import PhotoGuidance
from .sampler import MODES, JointZoomSampler, ZoomSample
from .stack import (
    ZoomStack,
    centre_mask,
    crop_centre,
    downsample,
    downsample_k,
    footprint,
    max_depth,
    noise_gain,
    render_image,
    render_images,
    render_noise,
    render_noises,
    step_kernel,
)
from .video import log_zoom_path, zoom_frame, zoom_video

__all__ = [
    "MODES",
    "DDPMSchedule",
    "DiffusersDenoiser",
    "JointZoomSampler",
    "LoadedDenoiser",
    "PhotoGuidance",
    "ZoomSample",
    "ZoomStack",
    "blend_multires",
    "blend_naive",
    "centre_mask",
    "collapse",
    "crop_centre",
    "cross_scale_psnr",
    "downsample",
    "downsample_k",
    "footprint",
    "laplacian_pyramid",
    "load_diffusers_denoiser",
    "log_zoom_path",
    "max_depth",
    "noise_gain",
    "render_image",
    "render_images",
    "render_noise",
    "render_noises",
    "seam_ratio",
    "step_kernel",
    "zoom_frame",
    "zoom_video",
]
