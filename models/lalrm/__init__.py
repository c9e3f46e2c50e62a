"""LaLRM (Wonderland §3.3, App. D): video latents + Plücker rays → pixel-aligned 3D Gaussians.

``LaLRM(config)(latents, plucker)`` gives the raw 12-channel Gaussian map; ``LaLRM.gaussians``
activates it (``gaussians_from_map``); ``render_views`` renders scenes at supervision cameras;
``inference`` reconstructs scenes from latents or video and renders them along a fly-through.
"""

from .config import GAUSSIAN_CHANNELS, LALRM_CONFIGS, LaLRMConfig, lalrm_config
from .gaussians import gaussians_from_map
from .inference import (
    flythrough_path,
    prune_gaussians,
    reconstruct,
    reconstruct_from_video,
    render_cameras,
    scene_of,
)
from .model import LaLRM, adapt_state_dict
from .perceptual import VGG19PerceptualLoss, vgg19_features, vgg19_layer_names
from .render import render_views
from .tokenizers import (
    LaLRMTokenizer,
    LatentTokenizer,
    PluckerTokenizer,
    pad_causal_frames,
)

__all__ = [
    "GAUSSIAN_CHANNELS",
    "LALRM_CONFIGS",
    "LaLRM",
    "LaLRMConfig",
    "LaLRMTokenizer",
    "LatentTokenizer",
    "PluckerTokenizer",
    "VGG19PerceptualLoss",
    "adapt_state_dict",
    "flythrough_path",
    "gaussians_from_map",
    "lalrm_config",
    "pad_causal_frames",
    "prune_gaussians",
    "reconstruct",
    "reconstruct_from_video",
    "render_cameras",
    "render_views",
    "scene_of",
    "vgg19_features",
    "vgg19_layer_names",
]
