"""InSpatio-WorldFM frame model (torch + diffusers): the stage-I PixArt image prior, the
width-concatenated frame DiT with PRoPE / Plücker / parametric camera encodings, the diffusion
schedule, DMD distillation to a 2-step generator, and the inference pipeline."""

from .causal import ConditionCache
from .conditions import FrameCondition, cat_conditions
from .dit import (
    CAMERA_ENCODINGS,
    CONDITION_ATTENTION,
    FrameDiT,
    concat_width,
    frame_config_from_pixart,
    frame_pos_embed,
    load_image_prior_weights,
    split_width,
    unpatchify,
)
from .dmd import (
    PAPER_TIMESTEPS,
    FewStepSampler,
    TeacherPairs,
    distribution_matching_loss,
    fake_score_loss,
    make_teacher_pairs,
    regression_loss,
)
from .image_prior import (
    PIXART_CONFIGS,
    PIXART_SIGMA_MAX_LENGTH,
    TEXT_ENCODER_CONFIGS,
    ImagePrior,
    PromptEncoder,
    build_pixart,
    load_pixart,
    pixart_config,
    pixart_folder,
    sample_images,
)
from .pipeline import FramePipeline
from .prope import (
    grid_rope,
    normalize_K,
    projection_matrices,
    prope_attention,
    rope_attention,
)
from .schedule import DiffusionSchedule, TimestepSampler, ddim_sample

TwoStepSampler = FewStepSampler  # default timesteps [999, 200]

__all__ = [
    "CAMERA_ENCODINGS",
    "CONDITION_ATTENTION",
    "PAPER_TIMESTEPS",
    "PIXART_CONFIGS",
    "PIXART_SIGMA_MAX_LENGTH",
    "TEXT_ENCODER_CONFIGS",
    "ConditionCache",
    "DiffusionSchedule",
    "FewStepSampler",
    "FrameCondition",
    "FrameDiT",
    "FramePipeline",
    "ImagePrior",
    "PromptEncoder",
    "TeacherPairs",
    "TimestepSampler",
    "TwoStepSampler",
    "build_pixart",
    "cat_conditions",
    "concat_width",
    "ddim_sample",
    "distribution_matching_loss",
    "fake_score_loss",
    "frame_config_from_pixart",
    "frame_pos_embed",
    "grid_rope",
    "load_image_prior_weights",
    "load_pixart",
    "make_teacher_pairs",
    "normalize_K",
    "pixart_config",
    "pixart_folder",
    "projection_matrices",
    "prope_attention",
    "regression_loss",
    "rope_attention",
    "sample_images",
    "split_width",
    "unpatchify",
]
