"""Rendering in torch: z-buffered point clouds and Gaussian splatting (3DGS / 2DGS surfels)."""

from .gaussians import RenderOutput, render_gaussians, viewmats_from_c2w
from .points import render_points

__all__ = ["RenderOutput", "render_gaussians", "render_points", "viewmats_from_c2w"]
