"""Render clips of procedural worlds: exact RGB, depth, normals and poses plus point-cloud renders.

``render_clip`` renders the frames a recipe keeps from a sampled path, builds the global point
cloud from the reference (seen) frames and renders it at every target (unseen) pose with
``datagen.anchors`` (``models.render.render_points``). ``make_clip`` does the whole demo recipe for one world: sample a
trajectory, render, package as a validated ``Clip``.
"""

from __future__ import annotations

import numpy as np
import torch

from datagen.anchors import global_point_cloud, render_anchors
from datagen.clips import Clip, Provenance
from datagen.trajectories.recipes import Recipe, make_recipe
from datagen.worlds.ops import torch_threads
from datagen.worlds.render import render_views
from datagen.worlds.world import World
from models.geometry import K_from_fov

LICENSE = "procedural (CC0)"


def render_clip(
    world: World,
    poses: np.ndarray,
    K: np.ndarray,
    H: int,
    W: int,
    recipe: Recipe,
    key: str,
    *,
    supersample: int = 1,
    radius_px: float = 1.0,
    max_points: int | None = None,
    fps: float = 30.0,
    device: str | torch.device = "cpu",
    pcr_device: str | torch.device | None = None,
    extra: dict | None = None,
) -> Clip:
    """Render the frames ``recipe`` keeps from ``poses`` ``[recipe.num_poses, 4, 4]`` with ``K``
    ``[3, 3]`` into a validated ``Clip`` (ref_idx/target_idx = the recipe's reference/seen and
    target/unseen frames; point-cloud renders at the targets from at most ``max_points`` points
    of the references, default ``8 * H * W``: all of WorldFM's 4 references, an even subsample of
    Wonderland's many seen frames).

    ``device`` shades the frames (CPU is faster at these sizes: the shading is many small ops);
    ``pcr_device`` renders the point clouds (default: CUDA when available, ~50× faster).
    """
    if pcr_device is None:
        pcr_device = "cuda" if torch.cuda.is_available() else "cpu"
    poses = np.asarray(poses, np.float64)
    if len(poses) != recipe.num_poses:
        raise ValueError(f"recipe {recipe.name} needs {recipe.num_poses} poses, got {len(poses)}")
    frames = recipe.frame_ids
    c2w = poses[frames]
    Ks = np.repeat(np.asarray(K, np.float64)[None], len(frames), 0)
    views = render_views(world, Ks, c2w, H, W, supersample, device=device)
    rgb, depth, normals = views["rgb"], views["depth"], views["normals"]
    ref, tgt = recipe.ref_idx, recipe.target_idx
    max_points = 8 * H * W if max_points is None else max_points
    # exact depth: every valid pixel of the references, no voxel merging (datagen.anchors, the
    # same calls real-video ingestion makes)
    pts, cols = global_point_cloud(
        rgb[ref], depth[ref], Ks[ref], c2w[ref], voxel_size=0, max_points=max_points
    )
    with torch_threads(1 if torch.device(pcr_device).type == "cpu" else None):
        pcr_rgb, pcr_mask = render_anchors(
            pts, cols, Ks[tgt], c2w[tgt], H, W, radius_px, pcr_device
        )
    captions = world.captions()
    provenance = Provenance(
        source_kind="synthetic",
        scene_id=world.id,
        license=LICENSE,
        pose_estimator="exact",
        depth_estimator="exact",
        extra={
            "world_spec": world.spec.to_dict(),
            "recipe": recipe.name,
            **recipe.extra,
            "num_points": int(pts.shape[0]),
            **(extra or {}),
        },
    )
    clip = Clip(
        key=key,
        rgb=rgb,
        K=Ks.astype(np.float32),
        c2w=c2w.astype(np.float32),
        depth=depth,
        provenance=provenance,
        depth_conf=(depth > 0).astype(np.float32),
        normals=normals,
        ref_idx=list(ref),
        target_idx=list(tgt),
        pcr_rgb=pcr_rgb,
        pcr_mask=pcr_mask,
        caption=captions[0],
        level_captions=captions,
        timestamps=np.asarray(frames, np.float64) / fps,
        frame_ids=list(frames),
    )
    return clip.validate()


def make_clip(
    world: World,
    recipe: str = "worldfm",
    seed: int = 0,
    H: int = 256,
    W: int = 256,
    fov_deg: float = 60.0,
    template: str | None = None,
    key: str | None = None,
    supersample: int = 1,
    device: str | torch.device = "cpu",
    **recipe_kwargs,
) -> Clip:
    """Sample a valid trajectory (seeded) and render one clip of ``recipe`` ("worldfm" or
    "wonderland"); the key defaults to ``{world id}-{recipe}-{seed}``."""
    from datagen.trajectories.sampler import sample_trajectory  # (sampler imports datagen.worlds)

    rng = np.random.default_rng(seed)
    rec = make_recipe(recipe, rng, **recipe_kwargs)
    traj = sample_trajectory(world, rec.num_poses, rng, template)
    K = K_from_fov(fov_deg, H, W, dtype=torch.float64).numpy()
    extra = {"template": traj.template, "template_params": traj.params, "fov_deg": fov_deg}
    return render_clip(
        world,
        traj.c2w,
        K,
        H,
        W,
        rec,
        key or f"{world.id}-{recipe}-{seed}",
        supersample=supersample,
        device=device,
        extra=extra,
    )
