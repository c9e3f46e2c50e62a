"""Progressive detail synthesis (WonderZoom §3.2): the base level from one image, then zoom steps.

``initial_world`` (level 0, native scale ``λ_0``):
  * Wonderland path, when a video model and a LaLRM are given: image → camera-guided video along
    a small orbit → LaLRM → 3D Gaussians → surfels;
  * otherwise: the depth estimator's depth of the image (scaled to median ``base_depth`` unless
    metric) → back-projected surfels, briefly fitted to the image.

``zoom_step`` (level ``l``, additive — the existing surfels are returned unchanged, first):
  (a) zoom camera by ``p`` towards a pixel of the last level; coarse render (rgb, alpha, expected
      depth) at it, and at its zoom-stack parent view;
  (b) the new image from the level's prompt: two-level joint zoom-stack sampling with photograph
      guidance on the parent render (``image_models.sample_fine_image``);
  (d) auxiliary views on a small orbit around the zoom target (when a generator is given);
  (c) depth: the LaLRM pass over the aux views (view 0's depth) when a LaLRM is given, else the
      depth estimator; registered to the coarse depth (``registration.register_depth``);
  (e) lift: LaLRM Gaussians registered to that depth, or back-projection + a short fit against the
      new image (and the aux views); ``add_level`` at ``λ_l``.
(Aux views come before depth so that a LaLRM pass can serve both; their cameras only need the
zoom target, known from the last level.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from models.surfels import SurfelSet, add_level

from .aux_views import AuxViewGenerator, aux_cameras
from .cameras import check_zoom_mode, fixed_point, parent_K, pixel_ray_point, zoom_camera
from .depth import DepthEstimator, DepthPrediction
from .image_models import ZoomImageModel, sample_fine_image
from .lalrm_lift import LaLRMReconstructor, registered_surfels, upsample_depth
from .lifting import backproject_surfels, fit_surfels, gaussians_to_surfels
from .registration import register_depth
from .render import rasterize_surfels, render_world, world_coverage
from .world import World, ZoomLevel, base_log_scale, level_log_scale

Progress = Callable[[str], None]


@dataclass
class SynthesisConfig:
    """Settings of world generation (defaults: the papers' where they give one).

    p: zoom factor per level (2 or 4); zoom_mode: ``dolly`` | ``focal`` (``cameras``);
    steps / guidance_scale (None: the image model's) / photo_*: the zoom-stack sampler
    (Powers of Ten: 5 Adam steps at lr 0.1 per blend); min_alpha, edge_tol, refine_*,
    smooth_weight: depth registration; aux_frames (4k + 1) / aux_angle_deg: the aux-view orbit;
    fit_steps / fit_lr / stride: back-projection and its fit; base_depth: median depth given to a
    non-metric level-0 estimate (and the planar fallback's distance); background: RGB behind the
    surfels; backend: renderer (auto: gsplat on CUDA, torch elsewhere).
    """

    p: int = 2
    zoom_mode: str = "dolly"
    steps: int = 50
    guidance_scale: float | None = None
    photo_guidance: bool = True
    photo_steps: int = 5
    photo_lr: float = 0.1
    min_alpha: float = 0.5
    edge_tol: float = 0.1
    refine_steps: int = 100
    refine_lr: float = 0.02
    smooth_weight: float = 1.0
    aux_frames: int = 9
    aux_angle_deg: float = 8.0
    fit_steps: int = 20
    fit_lr: float = 0.05
    stride: int = 1
    base_depth: float = 2.0
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    backend: str = "auto"

    def __post_init__(self):
        if self.p not in (2, 4):
            raise ValueError(f"zoom factor p must be 2 or 4, got {self.p}")
        check_zoom_mode(self.zoom_mode)
        if (self.aux_frames - 1) % 4:
            raise ValueError(f"aux_frames must be 4k + 1, got {self.aux_frames}")


@dataclass
class WorldModels:
    """The pluggable parts: image model, depth estimator, optional aux-view generator and LaLRM."""

    image_model: ZoomImageModel
    depth: DepthEstimator
    aux_views: AuxViewGenerator | None = None
    reconstructor: LaLRMReconstructor | None = None

    def describe(self) -> dict:
        """Names of the parts in use (for manifests)."""
        name = lambda x: None if x is None else getattr(x, "name", type(x).__name__)  # noqa: E731
        return {
            "image_model": name(self.image_model),
            "depth": name(self.depth),
            "aux_views": name(self.aux_views),
            "reconstructor": name(self.reconstructor),
        }


def _render_kwargs(cfg: SynthesisConfig, device) -> dict:
    bg = torch.tensor(cfg.background, dtype=torch.float32, device=device)
    return {"background": bg, "backend": cfg.backend}


def _bilinear(depth: Tensor, pixel: Tensor) -> float:
    """``depth [H, W]`` at continuous pixel coordinates ``[2]`` (centres at +0.5); 0 if invalid."""
    H, W = depth.shape
    x = float(pixel[0]) - 0.5
    y = float(pixel[1]) - 0.5
    x0, y0 = max(0, min(W - 1, math.floor(x))), max(0, min(H - 1, math.floor(y)))
    x1, y1 = min(x0 + 1, W - 1), min(y0 + 1, H - 1)
    fx, fy = min(max(x - x0, 0.0), 1.0), min(max(y - y0, 0.0), 1.0)
    d = depth.double()
    corners = torch.stack([d[y0, x0], d[y0, x1], d[y1, x0], d[y1, x1]])
    if (corners <= 0).any():
        valid = d[d > 0]
        return float(valid.median()) if valid.numel() else 0.0
    top = corners[0] * (1 - fx) + corners[1] * fx
    bottom = corners[2] * (1 - fx) + corners[3] * fx
    return float(top * (1 - fy) + bottom * fy)


def _stamp(s: SurfelSet, scale: float) -> SurfelSet:
    native = torch.full_like(s.native_scale, float(scale))
    return SurfelSet(s.means, s.quats, s.scales, s.opacities, s.colors, native)


def initial_world(
    image: Tensor,
    K: Tensor,
    c2w: Tensor,
    prompt: str,
    models: WorldModels,
    cfg: SynthesisConfig,
    seed: int = 0,
    progress: Progress | None = None,
) -> World:
    """Level 0 of a world from ``image [3, H, W]`` in [0, 1] seen by ``K [3, 3]``/``c2w [4, 4]``."""
    say = progress or (lambda _msg: None)
    H, W = image.shape[-2:]
    K, c2w = K.to(torch.float64), c2w.to(torch.float64)
    kw = _render_kwargs(cfg, image.device)
    stats: dict = {}
    if models.aux_views is not None and models.reconstructor is not None:
        say("level 0: single-view LaLRM depth for the orbit's target")
        pred = models.reconstructor.depth(image, K, c2w)
        d = pred.as_depth()
        scene = float(d[d > 0].median()) if (d > 0).any() else cfg.base_depth
        centre = torch.tensor([W / 2, H / 2], dtype=torch.float64)
        target = pixel_ray_point(K, c2w, centre, scene)
        Ks, cams = aux_cameras(K, c2w, target, cfg.aux_frames, cfg.aux_angle_deg)
        say(f"level 0: {cfg.aux_frames} video frames around the view ({models.aux_views.name})")
        frames = models.aux_views(image, Ks, cams, seed=seed, scene_scale=scene)
        say("level 0: LaLRM Gaussians -> surfels")
        g = models.reconstructor.gaussians(frames, Ks, cams, scene_scale=scene)
        surfels = gaussians_to_surfels(
            g["means"], g["quats"], g["scales"], g["opacities"], g["colors"]
        ).to(image.device)
        out = rasterize_surfels(surfels, K, c2w, W, H, **kw)
        depth = torch.where(out.alpha[0, 0] > cfg.min_alpha, out.depth[0, 0], 0.0)
        stats.update(path="wonderland", scene_scale=scene, aux_frames=cfg.aux_frames)
    else:
        say(f"level 0: depth of the image ({models.depth.name})")
        pred: DepthPrediction = models.depth(image, K, c2w)
        depth = pred.as_depth()
        if not (depth > 0).any():
            raise ValueError(f"depth estimator {models.depth.name!r} gave no valid depth")
        if not pred.metric:
            depth = depth * (cfg.base_depth / float(depth[depth > 0].median()))
        surfels = backproject_surfels(image, depth, K, c2w, stride=cfg.stride)
        say(f"level 0: fitting {len(surfels)} surfels ({cfg.fit_steps} steps)")
        surfels, losses = fit_surfels(
            surfels, image[None], K[None].float(), c2w[None].float(), cfg.fit_steps, cfg.fit_lr,
            background=kw["background"], backend=cfg.backend,
        )  # fmt: skip
        stats.update(path="depth", metric=pred.metric, fit_loss=losses[:1] + losses[-1:])
    lam0 = base_log_scale(K, depth)
    surfels = _stamp(surfels, lam0)
    level = ZoomLevel(0, prompt, K, c2w, lam0, image, depth, num_surfels=len(surfels), stats=stats)
    return World(surfels, [level], cfg.p, cfg.zoom_mode)


def zoom_step(
    world: World,
    prompt: str,
    models: WorldModels,
    cfg: SynthesisConfig,
    centre: Tensor | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> World:
    """One zoom step (module doc): a new ``World`` with level ``l = len(world.levels)`` added.
    ``centre``: pixel ``[2]`` of the last level's image to zoom towards (default its centre)."""
    say = progress or (lambda _msg: None)
    last = world.levels[-1]
    n, p = len(world.levels), world.p
    H, W = world.size
    dev = world.surfels.means.device
    kw = _render_kwargs(cfg, dev)
    if centre is None:
        centre = torch.tensor([W / 2, H / 2], dtype=torch.float64)
    fixed = fixed_point(centre.to(torch.float64), (H, W), p)
    target = pixel_ray_point(last.K, last.c2w, fixed, _bilinear(last.depth, fixed))
    K, c2w = zoom_camera(last.K, last.c2w, p, fixed, target, 1.0, world.zoom_mode)

    say(f"level {n}: coarse render at the zoom camera")
    cover = world_coverage(world)
    coarse = render_world(world, K, c2w, cover=cover, **kw)
    parent = render_world(world, parent_K(K, p, (H, W)), c2w, cover=cover, **kw)

    say(f"level {n}: sampling the new image ({models.image_model.name}, {cfg.steps} steps)")
    fine = sample_fine_image(
        models.image_model, parent.rgb[0], coarse.rgb[0], (last.prompt, prompt), p, cfg.steps,
        cfg.guidance_scale, cfg.photo_guidance, cfg.photo_steps, cfg.photo_lr, seed,
    ).image.to(dev)  # fmt: skip

    scene = float((target - c2w[:3, 3].to(target)).norm())
    frames = Ks = cams = None
    if models.aux_views is not None:
        say(f"level {n}: {cfg.aux_frames} auxiliary views ({models.aux_views.name})")
        Ks, cams = aux_cameras(K, c2w, target, cfg.aux_frames, cfg.aux_angle_deg)
        frames = models.aux_views(fine, Ks, cams, seed=seed + n, scene_scale=scene).to(dev)

    g = None
    if models.reconstructor is not None and frames is not None:
        say(f"level {n}: LaLRM over the auxiliary views")
        g = models.reconstructor.gaussians(frames, Ks, cams, scene_scale=scene)
        pred = DepthPrediction(upsample_depth(g["depth0"], (H, W)).to(fine), "depth")
        depth_source = models.reconstructor.name
    else:
        say(f"level {n}: depth of the new image ({models.depth.name})")
        pred = models.depth(fine, K, c2w)
        depth_source = models.depth.name
    say(f"level {n}: registering the depth to the coarse render")
    reg = register_depth(
        pred, coarse.depth[0, 0], coarse.alpha[0, 0], cfg.min_alpha, cfg.edge_tol,
        cfg.refine_steps, cfg.refine_lr, cfg.smooth_weight,
    )  # fmt: skip

    if g is not None:
        say(f"level {n}: LaLRM Gaussians registered to the depth -> surfels")
        new = registered_surfels(g, reg.depth, K, c2w).to(dev)
        fit_losses: list[float] = []
    else:
        new = backproject_surfels(fine, reg.depth, K, c2w, stride=cfg.stride)
        views, vK, vc = fine[None], K[None].float(), c2w[None].float()
        if frames is not None:
            views = torch.cat([views, frames[1:]])
            vK = torch.cat([vK, Ks[1:].float()])
            vc = torch.cat([vc, cams[1:].float()])
        say(
            f"level {n}: fitting {len(new)} surfels on {views.shape[0]} views ({cfg.fit_steps} steps)"
        )
        new, fit_losses = fit_surfels(
            new, views, vK, vc, cfg.fit_steps, cfg.fit_lr, background=kw["background"],
            backend=cfg.backend,
        )  # fmt: skip
    lam = level_log_scale(world.base_log_scale, p, n)
    surfels = add_level(world.surfels, new, lam)
    stats = {
        "registration": reg.stats,
        "depth_source": depth_source,
        "coarse_coverage": float((coarse.alpha[0, 0] > cfg.min_alpha).float().mean()),
        "fit_loss": fit_losses[:1] + fit_losses[-1:],
        "aux_views": 0 if frames is None else int(frames.shape[0]),
        "photo_guidance": cfg.photo_guidance,
    }
    level = ZoomLevel(
        n, prompt, K, c2w, lam, fine, reg.depth.to(dev), fixed, target,
        coarse={"rgb": coarse.rgb[0], "alpha": coarse.alpha[0, 0], "depth": coarse.depth[0, 0]},
        num_surfels=len(new), stats=stats,
    )  # fmt: skip
    return World(surfels, [*world.levels, level], p, world.zoom_mode)
