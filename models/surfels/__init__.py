"""Scale-adaptive Gaussian surfels (WonderZoom §3.1): native scales, tent opacity modulation whose
weights sum to 1 across the hierarchy (Prop. 1), culling, 2DGS rendering."""

from .scale_adaptive import (
    SurfelSet,
    add_level,
    camera_log_scale,
    merge,
    modulate,
    modulation_weights,
    render_surfels,
)

__all__ = [
    "SurfelSet",
    "add_level",
    "camera_log_scale",
    "merge",
    "modulate",
    "modulation_weights",
    "render_surfels",
]
