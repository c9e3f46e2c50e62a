"""Camera trajectories in procedural worlds: free-space sampling, templates, validity, recipes."""

from datagen.trajectories.re10k_export import camera_set, export_realestate10k
from datagen.trajectories.recipes import Recipe, make_recipe, wonderland_recipe, worldfm_recipe
from datagen.trajectories.sampler import (
    Trajectory,
    Validity,
    check_poses,
    clearance,
    forward_depths,
    ground_height,
    inside_geometry,
    sample_start,
    sample_trajectory,
)
from datagen.trajectories.templates import TEMPLATES, motion_stats

__all__ = [
    "TEMPLATES",
    "Recipe",
    "Trajectory",
    "Validity",
    "camera_set",
    "check_poses",
    "clearance",
    "export_realestate10k",
    "forward_depths",
    "ground_height",
    "inside_geometry",
    "make_recipe",
    "motion_stats",
    "sample_start",
    "sample_trajectory",
    "wonderland_recipe",
    "worldfm_recipe",
]
