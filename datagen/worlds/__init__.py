"""Procedural multi-scale worlds with exact depth and poses (the platform's synthetic source).

``WorldSpec`` (family, seed, params; JSON) -> ``generate_world`` -> ``World`` (mesh, procedural
materials, scene graph with per-level captions, lighting, navigation hints) -> ``render`` (RGB,
z-depth, normals, instance ids) and ``render_clip`` / ``make_clip`` (validated ``Clip`` records).
See docs/synthetic-worlds.md.
"""

from datagen.worlds.captions import captions_by_level, level_captions
from datagen.worlds.clips import make_clip, render_clip
from datagen.worlds.generate import FAMILIES, FAMILY_DEFAULTS, generate_world
from datagen.worlds.materials import KINDS, Material
from datagen.worlds.render import cast_depth, preview_image, render, render_views
from datagen.worlds.scene_graph import NUM_LEVELS, SceneNode
from datagen.worlds.spec import WorldSpec
from datagen.worlds.world import Lighting, Navigation, World

__all__ = [
    "FAMILIES",
    "FAMILY_DEFAULTS",
    "KINDS",
    "NUM_LEVELS",
    "Lighting",
    "Material",
    "Navigation",
    "SceneNode",
    "World",
    "WorldSpec",
    "captions_by_level",
    "cast_depth",
    "generate_world",
    "level_captions",
    "make_clip",
    "preview_image",
    "render",
    "render_clip",
    "render_views",
]
