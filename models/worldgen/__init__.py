"""Multi-scale world generation (WonderZoom §3 on the platform's models): zoom cameras, rendering
with coverage-aware opacity modulation, depth estimators and registration, lifting to surfels,
auxiliary views, the zoom step's image sampler, progressive detail synthesis and video paths.
Torch only; file formats live in ``datagen.world_files``."""

from .aux_views import AuxViewGenerator, VideoModelAuxViews, aux_cameras
from .cameras import (
    ZOOM_MODES,
    fixed_point,
    magnify_K,
    orbit_cameras,
    parent_K,
    zoom_camera,
    zoom_path,
)
from .depth import (
    CallableDepth,
    DepthEstimator,
    DepthPrediction,
    OracleDepth,
    PlaneDepth,
    fronto_parallel_plane,
    plane_depth,
)
from .image_models import (
    AnalyticImageModel,
    FineImage,
    LatentPriorImageModel,
    ZoomImageModel,
    sample_fine_image,
)
from .lalrm_lift import LaLRMDepth, LaLRMReconstructor, registered_surfels
from .lifting import backproject_surfels, fit_surfels, gaussians_to_surfels
from .registration import (
    Registration,
    align_scale_shift,
    refine_depth,
    register_depth,
    reliability_weights,
)
from .render import (
    coverage_levels,
    level_weights,
    modulated_surfels,
    rasterize_surfels,
    render_world,
    surfel_log_scales,
    world_coverage,
)
from .synthesis import SynthesisConfig, WorldModels, initial_world, zoom_step
from .videos import orbit_cameras_of, render_frames, zoom_cameras
from .world import World, ZoomLevel, base_log_scale, level_log_scale

__all__ = [
    "ZOOM_MODES",
    "AnalyticImageModel",
    "AuxViewGenerator",
    "CallableDepth",
    "DepthEstimator",
    "DepthPrediction",
    "FineImage",
    "LaLRMDepth",
    "LaLRMReconstructor",
    "LatentPriorImageModel",
    "OracleDepth",
    "PlaneDepth",
    "Registration",
    "SynthesisConfig",
    "VideoModelAuxViews",
    "World",
    "WorldModels",
    "ZoomImageModel",
    "ZoomLevel",
    "align_scale_shift",
    "aux_cameras",
    "backproject_surfels",
    "base_log_scale",
    "coverage_levels",
    "fit_surfels",
    "fixed_point",
    "fronto_parallel_plane",
    "gaussians_to_surfels",
    "initial_world",
    "level_log_scale",
    "level_weights",
    "magnify_K",
    "modulated_surfels",
    "orbit_cameras",
    "orbit_cameras_of",
    "parent_K",
    "plane_depth",
    "rasterize_surfels",
    "refine_depth",
    "register_depth",
    "registered_surfels",
    "reliability_weights",
    "render_frames",
    "render_world",
    "sample_fine_image",
    "surfel_log_scales",
    "world_coverage",
    "zoom_camera",
    "zoom_cameras",
    "zoom_path",
    "zoom_step",
]
