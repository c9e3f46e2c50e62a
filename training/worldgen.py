"""Multi-scale world generation with the platform's checkpoints: resolve them (flags or the
registry's ``latest``), build the pluggable parts of ``models.worldgen``, run the base level and the
zoom steps, and write the world folder (``datagen.world_files``).

Checkpoints (role → registry models tried in order; a flag value may be a local export folder, a
published URI, or ``none`` to force the fallback):

    frame_stage1        frame_stage1                 text-to-image prior of the zoom stack
    lalrm               lalrm_stage2, lalrm_stage1   depth and lifting (Wonderland §3.3)
    camera_video_model  camera_video_model           auxiliary views, the base level's video

Fallbacks when a role has no checkpoint (recorded in ``world.json``):

    frame_stage1        the analytic Gaussian prior around the coarse render (prompts unused)
    lalrm               the depth estimator (``depth=module:function`` or the planar prior:
                        a fronto-parallel plane at ``base_depth``) + back-projected surfels
    camera_video_model  no auxiliary views; the base level from a depth estimate of the image
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from datagen.previews import contact_sheet, depth_to_rgb
from datagen.store import ArtifactStore
from datagen.world_files import (
    to_uint8_image,
    write_manifest,
    write_npy,
    write_png,
    write_surfels_ply,
    write_video,
)
from models.geometry import K_from_fov
from models.worldgen import (
    AnalyticImageModel,
    CallableDepth,
    LaLRMDepth,
    LaLRMReconstructor,
    LatentPriorImageModel,
    SynthesisConfig,
    VideoModelAuxViews,
    World,
    WorldModels,
    fronto_parallel_plane,
    initial_world,
    orbit_cameras_of,
    render_frames,
    render_world,
    zoom_cameras,
    zoom_step,
)
from models.zoom import cross_scale_psnr
from training import registry

CHECKPOINT_ROLES: dict[str, tuple[str, ...]] = {
    "frame_stage1": ("frame_stage1",),
    "lalrm": ("lalrm_stage2", "lalrm_stage1"),
    "camera_video_model": ("camera_video_model",),
}
DISABLED = ("none", "off")


@dataclass
class CheckpointChoice:
    """Where a role's checkpoint comes from: ``source`` flag | registry | disabled | missing."""

    role: str
    source: str
    uri: str | None = None
    model: str | None = None
    version: str | None = None
    fallback: str | None = None

    @property
    def available(self) -> bool:
        return self.uri is not None

    def record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def resolve_checkpoints(
    overrides: dict[str, str] | None = None, store: ArtifactStore | None = None
) -> dict[str, CheckpointChoice]:
    """Pick each role's checkpoint: a flag (local folder, URI, or ``none``), else the registry's
    latest published version of its models (in order), else missing."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(CHECKPOINT_ROLES)
    if unknown:
        raise ValueError(
            f"unknown checkpoint roles {sorted(unknown)}; use {sorted(CHECKPOINT_ROLES)}"
        )
    out = {}
    for role, models in CHECKPOINT_ROLES.items():
        value = overrides.get(role)
        if value is not None and value.lower() in DISABLED:
            out[role] = CheckpointChoice(role, "disabled")
            continue
        if value:
            if "://" not in value and not Path(value).is_dir():
                raise FileNotFoundError(f"--checkpoints {role}={value}: no such export folder")
            out[role] = CheckpointChoice(role, "flag", uri=value, version=Path(value).name)
            continue
        choice = CheckpointChoice(role, "missing")
        if store is not None:
            for model in models:
                try:
                    prefix = registry.resolve(store, model)
                except (LookupError, ValueError):
                    continue
                choice = CheckpointChoice(
                    role, "registry", store.uri(prefix), model, prefix.rsplit("/", 1)[-1]
                )
                break
        out[role] = choice
    return out


@dataclass
class GenerationOptions:
    """How to generate (see ``models.worldgen.SynthesisConfig`` for the synthesis settings).

    levels: number of levels (default: one per prompt); size: working resolution (None: the
    image prior's, else 256); centres: normalised zoom centre per step (one entry: every step);
    fov_deg: the input image's horizontal field of view; frames_per_level / orbit_frames /
    orbit_angle_deg / fps: the videos; depth: ``module:function`` of a monocular estimator
    (``image [3, H, W] -> [H, W]``) of kind ``depth_kind``; prior_std: the analytic fallback's
    prior std; video_steps: sampling steps of the camera-guided video model.
    """

    levels: int | None = None
    p: int = 2
    steps: int = 50
    seed: int = 0
    size: int | None = None
    zoom_mode: str = "dolly"
    centres: list[list[float]] | None = None
    fov_deg: float = 60.0
    frames_per_level: int = 12
    orbit_frames: int = 16
    orbit_angle_deg: float = 10.0
    fps: float = 12.0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    guidance_scale: float | None = None
    photo_guidance: bool = True
    fit_steps: int = 20
    refine_steps: int = 100
    aux_frames: int = 9
    video_steps: int = 25
    depth: str | None = None
    depth_kind: str = "depth"
    prior_std: float = 0.1
    base_depth: float = 2.0
    backend: str = "auto"
    synthesis: dict = field(default_factory=dict)

    def synthesis_config(self) -> SynthesisConfig:
        return SynthesisConfig(
            p=self.p, zoom_mode=self.zoom_mode, steps=self.steps,
            guidance_scale=self.guidance_scale, photo_guidance=self.photo_guidance,
            fit_steps=self.fit_steps, refine_steps=self.refine_steps, aux_frames=self.aux_frames,
            base_depth=self.base_depth, backend=self.backend, **self.synthesis,
        )  # fmt: skip


def _import_callable(spec: str):
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"depth estimator {spec!r}: expected 'package.module:function'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"depth estimator {spec!r} cannot be imported ({error})") from None


@dataclass
class BuiltModels:
    """The parts, the working size ``(H, W)`` and the fallbacks taken (sentences)."""

    models: WorldModels
    size: tuple[int, int]
    fallbacks: list[str]


def build_models(choices: dict[str, CheckpointChoice], options: GenerationOptions) -> BuiltModels:
    """Load the chosen checkpoints onto ``options.device`` and fill the gaps with fallbacks."""
    from training.modules.frame_common import local_folder

    dev = torch.device(options.device)
    fallbacks: list[str] = []
    native = None
    frame = choices["frame_stage1"]
    if frame.available:
        from training.modules.frame_stage1 import load_image_prior

        prior, vae, text = load_image_prior(frame.uri, map_location=dev)
        image_model = LatentPriorImageModel(prior, text, vae)
        f = 2 ** (len(vae.config.block_out_channels) - 1)
        native = int(prior.transformer.config.sample_size) * f
    else:
        image_model = AnalyticImageModel(std=options.prior_std)
        frame.fallback = "analytic Gaussian prior around the coarse render (prompts unused)"
        fallbacks.append(f"frame_stage1: {frame.fallback}")
    S = options.size or native or 256
    size = (S, S)

    reconstructor = None
    lalrm = choices["lalrm"]
    if lalrm.available:
        from training.modules.lalrm import LaLRMModule

        with local_folder(lalrm.uri) as folder:
            module = LaLRMModule.load(folder, map_location=dev)
        reconstructor = LaLRMReconstructor(module.model, module.vae, name=lalrm.model or "lalrm")
        unit = module.model.config.spatial_compression * module.model.config.latent_patch
        if S % unit:
            raise ValueError(f"size {S} is not a multiple of {unit}, which the LaLRM needs")
    if options.depth:
        depth = CallableDepth(_import_callable(options.depth), options.depth_kind,
                              name=options.depth)  # fmt: skip
    elif reconstructor is not None:
        depth = LaLRMDepth(reconstructor)
    else:
        c2w0 = torch.eye(4, dtype=torch.float64)
        depth = fronto_parallel_plane(c2w0, options.base_depth)
        depth.name = f"planar prior at depth {options.base_depth}"
    if not lalrm.available:
        lalrm.fallback = f"depth estimator '{depth.name}' + back-projected surfels"
        fallbacks.append(f"lalrm: {lalrm.fallback}")

    aux = None
    video = choices["camera_video_model"]
    if video.available:
        from training.modules.video_model import CameraVideoModule

        with local_folder(video.uri) as folder:
            module = CameraVideoModule.load(folder, map_location=dev)
        base = module.model.base.config
        s = module.model.config.spatial_compression
        aux = VideoModelAuxViews(
            module.sampler(), (int(base.sample_height) * s, int(base.sample_width) * s),
            steps=options.video_steps, name=video.model or "camera_video_model",
        )  # fmt: skip
    else:
        video.fallback = "no auxiliary views; base level from a depth estimate of the image"
        fallbacks.append(f"camera_video_model: {video.fallback}")
    return BuiltModels(WorldModels(image_model, depth, aux, reconstructor), size, fallbacks)


def _centre_pixel(options: GenerationOptions, step: int, size: tuple[int, int]) -> torch.Tensor:
    H, W = size
    c = [0.5, 0.5]
    if options.centres:
        c = options.centres[min(step, len(options.centres) - 1)]
    return torch.tensor([float(c[0]) * W, float(c[1]) * H], dtype=torch.float64)


def run_world(
    image: torch.Tensor,
    prompts: list[str],
    models: WorldModels,
    options: GenerationOptions,
    cfg: SynthesisConfig | None = None,
) -> World:
    """Generate ``options.levels`` levels from ``image [3, H, W]`` in [0, 1] and the prompts."""
    cfg = cfg or options.synthesis_config()
    levels = options.levels or len(prompts)
    if not 1 <= levels <= len(prompts):
        raise ValueError(f"{levels} levels need as many prompts, got {len(prompts)}")
    H, W = image.shape[-2:]
    dev = torch.device(options.device)
    K = K_from_fov(options.fov_deg, H, W, dtype=torch.float64)
    c2w = torch.eye(4, dtype=torch.float64)
    bar = tqdm(total=levels, desc="world levels", unit="level")
    say = bar.set_postfix_str
    t0 = time.perf_counter()
    world = initial_world(image.to(dev), K, c2w, prompts[0], models, cfg, options.seed, say)
    world.levels[0].stats["seconds"] = round(time.perf_counter() - t0, 3)
    bar.update(1)
    for level in range(1, levels):
        t0 = time.perf_counter()
        centre = _centre_pixel(options, level - 1, (H, W))
        world = zoom_step(world, prompts[level], models, cfg, centre, options.seed + level, say)
        world.levels[-1].stats["seconds"] = round(time.perf_counter() - t0, 3)
        bar.update(1)
    bar.close()
    return world


def consistency_psnr(world: World, **render_kwargs) -> list[float]:
    """Cross-scale PSNR (dB, [0, 1] range) of the world rendered at each level's camera:
    ``D_1(R_{l+1})`` against the centre of ``R_l`` (Powers of Ten's consistency measure)."""
    if len(world.levels) < 2:
        return []
    R = torch.stack([render_world(world, lv.K, lv.c2w, **render_kwargs).rgb[0].clamp(0, 1)
                     for lv in world.levels])  # fmt: skip
    return [round(float(v), 3) for v in cross_scale_psnr(R.float().cpu(), world.p, 1.0)]


def _frames_bar(total: int, desc: str):
    bar = tqdm(total=total, desc=desc, unit="frame")
    return bar, bar.update


def write_world(
    world: World, out_dir: str | Path, options: GenerationOptions, manifest: dict | None = None
) -> dict:
    """Write the world folder (``datagen.world_files``); ``world.json`` last. Returns the manifest
    as written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bg = torch.zeros(3, device=world.surfels.means.device)
    kw = {"background": bg, "backend": options.backend}
    levels = []
    for lv in world.levels:
        i = lv.index
        files = {
            "ply": f"levels/level_{i}.ply",
            "image": f"levels/level_{i}.png",
            "depth": f"levels/depth_{i}.png",
            "depth_npy": f"levels/depth_{i}.npy",
            "orbit": f"orbits/level_{i}.mp4",
        }
        write_surfels_ply(out / files["ply"], world.level_surfels(i))
        write_png(out / files["image"], lv.image)
        write_png(out / files["depth"], depth_to_rgb(lv.depth.float().cpu().numpy()))
        write_npy(out / files["depth_npy"], lv.depth.float())
        if lv.coarse is not None:
            files["coarse"] = f"levels/coarse_{i}.png"
            write_png(out / files["coarse"], lv.coarse["rgb"])
        K, c2w = orbit_cameras_of(world, i, options.orbit_frames, options.orbit_angle_deg)
        bar, tick = _frames_bar(len(K), f"orbit level {i}")
        write_video(out / files["orbit"], render_frames(world, K, c2w, tick, **kw), options.fps)
        bar.close()
        levels.append({
            "index": i,
            "prompt": lv.prompt,
            "log_scale": lv.log_scale,
            "K": lv.K,
            "c2w": lv.c2w,
            "fixed_point": lv.fixed,
            "target": lv.target,
            "num_surfels": lv.num_surfels,
            "stats": lv.stats,
            "files": files,
        })  # fmt: skip
    K, c2w = zoom_cameras(world, options.frames_per_level)
    bar, tick = _frames_bar(len(K), "zoom video")
    zoom = render_frames(world, K, c2w, tick, **kw)
    bar.close()
    write_video(out / "zoom.mp4", zoom, options.fps)
    renders = [render_world(world, lv.K, lv.c2w, **kw).rgb[0].clamp(0, 1) for lv in world.levels]
    sheet = contact_sheet(
        [[to_uint8_image(lv.image) for lv in world.levels], [to_uint8_image(r) for r in renders]],
        tile_height=min(128, world.size[0]),
    )
    write_png(out / "preview.png", sheet)
    H, W = world.size
    data = {
        **(manifest or {}),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "size": [H, W],
        "p": world.p,
        "zoom_mode": world.zoom_mode,
        "num_levels": len(world.levels),
        "num_surfels": len(world.surfels),
        "levels": levels,
        "videos": {
            "zoom": "zoom.mp4",
            "zoom_frames": int(zoom.shape[0]),
            "frames_per_level": options.frames_per_level,
            "orbit_frames": options.orbit_frames,
            "fps": options.fps,
        },
        "preview": "preview.png",
        "consistency_psnr_db": consistency_psnr(world, **kw),
        "write_seconds": round(time.perf_counter() - t0, 2),
    }
    return write_manifest(out, data)


def generate(
    image: torch.Tensor,
    prompts: list[str],
    out_dir: str | Path,
    options: GenerationOptions,
    checkpoints: dict[str, str] | None = None,
    store: ArtifactStore | None = None,
    source: str | None = None,
) -> dict:
    """End to end: resolve + load checkpoints, generate, write ``out_dir``. ``image [3, h, w]`` in
    [0, 1] at any size (resized to the working size); returns the manifest."""
    from models.worldgen.aux_views import resize

    choices = resolve_checkpoints(checkpoints, store)
    built = build_models(choices, options)
    image = resize(image.float(), built.size).clamp(0, 1)
    t0 = time.perf_counter()
    world = run_world(image, prompts, built.models, options)
    seconds = time.perf_counter() - t0
    manifest = {
        "source_image": source,
        "prompts": prompts[: len(world.levels)],
        "seed": options.seed,
        "steps": options.steps,
        "fov_deg": options.fov_deg,
        "options": {k: v for k, v in asdict(options).items() if k != "synthesis"},
        "checkpoints": {role: c.record() for role, c in choices.items()},
        "fallbacks": built.fallbacks,
        "models": built.models.describe(),
        "generate_seconds": round(seconds, 2),
    }
    return write_world(world, out_dir, options, manifest)
