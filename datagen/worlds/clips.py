"""Render clips of procedural worlds: exact RGB, depth, normals and poses plus point-cloud renders.

``render_clip`` renders the frames a recipe keeps from a sampled path, builds the global point
cloud from the reference (seen) frames and renders it at every target (unseen) pose with
``models.render.render_points``. ``make_clip`` does the whole demo recipe for one world: sample a
trajectory, render, package as a validated ``Clip``.
"""

from __future__ import annotations

import numpy as np
import torch

from datagen.clips import Clip, Provenance
from datagen.trajectories.recipes import Recipe, make_recipe
from datagen.worlds.ops import torch_threads
from datagen.worlds.render import render
from datagen.worlds.world import World
from models.geometry import K_from_fov, unproject
from models.render import render_points

LICENSE = "procedural (CC0)"


def point_cloud(rgb: np.ndarray, depth: np.ndarray, K: np.ndarray, c2w: np.ndarray):
    """World points ``[N, 3]`` and colours ``[N, 3]`` in [0, 1] of all valid pixels of frames
    ``rgb`` ``[F, H, W, 3]`` uint8, ``depth`` ``[F, H, W]``, ``K`` ``[F, 3, 3]``, ``c2w``
    ``[F, 4, 4]`` (torch float32 tensors)."""
    d = torch.from_numpy(np.asarray(depth, np.float32))
    pts = unproject(
        d, torch.as_tensor(K, dtype=torch.float64), torch.as_tensor(c2w, dtype=torch.float64)
    )
    valid = d > 0
    colors = torch.from_numpy(np.asarray(rgb)).float() / 255.0
    return pts[valid].float(), colors[valid]


def render_point_clouds(
    points: torch.Tensor,
    colors: torch.Tensor,
    K: np.ndarray,
    c2w: np.ndarray,
    H: int,
    W: int,
    radius_px: float = 1.0,
    device: str | torch.device = "cpu",
    budget: int = 40_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Point-cloud renders at poses ``c2w`` ``[T, 4, 4]`` -> ``rgb`` uint8 ``[T, H, W, 3]`` and
    ``mask`` bool ``[T, H, W]``, batched so one batch splats at most ``budget`` samples."""
    T = len(c2w)
    out_rgb = np.zeros((T, H, W, 3), np.uint8)
    out_mask = np.zeros((T, H, W), bool)
    if T == 0 or points.shape[0] == 0:
        return out_rgb, out_mask
    pts, cols = points.to(device), colors.to(device)
    per_pose = points.shape[0] * (2 * int(np.ceil(radius_px)) + 1) ** 2
    chunk = max(1, budget // per_pose)
    Kt = torch.as_tensor(np.asarray(K), dtype=torch.float32, device=device)
    Ct = torch.as_tensor(np.asarray(c2w), dtype=torch.float32, device=device)
    for s in range(0, T, chunk):
        rgb, mask, _ = render_points(
            pts, cols, Kt[s : s + chunk], Ct[s : s + chunk], H, W, radius_px
        )
        out_rgb[s : s + chunk] = (
            (rgb.permute(0, 2, 3, 1) * 255 + 0.5).clamp(0, 255).byte().cpu().numpy()
        )
        out_mask[s : s + chunk] = mask.cpu().numpy()
    return out_rgb, out_mask


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
    views = [
        render(world, Ks[i], c2w[i], H, W, supersample, device=device) for i in range(len(frames))
    ]
    rgb = np.stack([v["rgb"] for v in views])
    depth = np.stack([v["depth"] for v in views])
    normals = np.stack([v["normals"] for v in views])
    ref, tgt = recipe.ref_idx, recipe.target_idx
    pts, cols = point_cloud(rgb[ref], depth[ref], Ks[ref], c2w[ref])
    max_points = 8 * H * W if max_points is None else max_points
    if pts.shape[0] > max_points:
        keep = torch.linspace(0, pts.shape[0] - 1, max_points).round().long()
        pts, cols = pts[keep], cols[keep]
    with torch_threads(1 if torch.device(pcr_device).type == "cpu" else None):
        pcr_rgb, pcr_mask = render_point_clouds(
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
