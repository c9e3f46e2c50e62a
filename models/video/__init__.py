"""Camera-guided video generation (Wonderland §3.2): frozen CogVideoX I2V + camera branches."""

from .base import build_base, load_base, rotary_embedding
from .camera_encoder import CameraEncoder, zero_linear
from .camera_model import MODES, CameraControlConfig, CameraGuidedCogVideoX, CameraTokens
from .latents import image_condition_latents, pad_image_latents
from .lora import LoRA, LoRAAdapters, block_lora_targets
from .sampler import CameraVideoSampler, relative_cameras
from .scheduler import COGVIDEOX_5B_SCHEDULER, make_scheduler
from .text import TextEncoder

__all__ = [
    "COGVIDEOX_5B_SCHEDULER",
    "MODES",
    "CameraControlConfig",
    "CameraEncoder",
    "CameraGuidedCogVideoX",
    "CameraTokens",
    "CameraVideoSampler",
    "LoRA",
    "LoRAAdapters",
    "TextEncoder",
    "block_lora_targets",
    "build_base",
    "image_condition_latents",
    "load_base",
    "make_scheduler",
    "pad_image_latents",
    "relative_cameras",
    "rotary_embedding",
    "zero_linear",
]
