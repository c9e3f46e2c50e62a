"""World generation: latency of one zoom step end to end, and viewer rendering FPS across scales.

zoom_step   one progressive-detail-synthesis step (coarse render, zoom-stack sampling with
            photograph guidance, aux views, depth + registration, lifting, add_level), timed per
            stage (synchronised on CUDA), for three model sets:
              fallback   analytic prior + planar depth (no networks: the geometry/render cost)
              prior      the stage-I image prior (random weights of --prior-size, or a checkpoint)
                         + planar depth + back-projection and fit
              full       prior + the camera-guided video model (random tiny, or a checkpoint) for
                         9 aux views + the LaLRM (random --lalrm-size, or a checkpoint)
            The working size is the prior's (tiny 64 px, small 256 px). --checkpoints ROLE=DIR
            replaces random models by exports (training/worldgen.py roles).
viewer      a synthetic world of --surfels 2D surfels in --levels levels (zoom ×2 each, level
            grids on a plane) rendered at --width × --height with coverage-aware opacity
            modulation (models.worldgen.render_world; gsplat 2DGS on CUDA) at zooms between the
            landscape and the finest level: modulation (weights + culling) and rasterisation
            time, surfels drawn, FPS.

    .venv/bin/python benchmarks/worldgen.py                 # GPU: tiny+small steps, 5M surfels 1080p
    .venv/bin/python benchmarks/worldgen.py --quick         # CPU smoke: tiny step, 20k surfels
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from models.geometry import K_from_fov, scale_K  # noqa: E402
from models.surfels import merge  # noqa: E402
from models.worldgen import (  # noqa: E402
    AnalyticImageModel,
    LaLRMDepth,
    LaLRMReconstructor,
    LatentPriorImageModel,
    SynthesisConfig,
    VideoModelAuxViews,
    World,
    WorldModels,
    ZoomLevel,
    backproject_surfels,
    fixed_point,
    fronto_parallel_plane,
    initial_world,
    modulated_surfels,
    plane_depth,
    rasterize_surfels,
    world_coverage,
    zoom_camera,
    zoom_step,
)
from models.zoom.toy import toy_targets  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return platform.processor() or platform.machine()


# ---- zoom step -----------------------------------------------------------------------------


def _random_prior(size: str, dev):
    from training.modules.frame_stage1 import ImagePriorModule

    torch.manual_seed(0)
    m = ImagePriorModule(size=size, vae={"size": size}).to(dev).eval()
    return LatentPriorImageModel(m.prior, m.text_encoder, m.vae)


def _random_video(dev):
    import yaml

    from training.config_files import config_path
    from training.modules.video_model import CameraVideoModule

    cfg = yaml.safe_load(config_path("camera_video_model", "tiny").read_text())["model"]
    torch.manual_seed(0)
    return CameraVideoModule(**cfg["init_args"]).to(dev).eval()


def _random_lalrm(size: str, dev):
    from training.modules.lalrm import LaLRMModule

    torch.manual_seed(0)
    return LaLRMModule(size=size, vae={"size": size}, perceptual="none").to(dev).eval()


def _models(kind: str, args, dev, checkpoints: dict[str, str]) -> tuple[WorldModels, int]:
    """(models, working size) of a model set."""
    plane = fronto_parallel_plane(torch.eye(4, dtype=torch.float64), 2.0)
    if kind == "fallback":
        return WorldModels(AnalyticImageModel(), plane), {"tiny": 64, "small": 256}[args.prior_size]
    if "frame_stage1" in checkpoints:
        from training.modules.frame_stage1 import load_image_prior

        prior, vae, text = load_image_prior(checkpoints["frame_stage1"], dev)
        image_model = LatentPriorImageModel(prior, text, vae)
    else:
        image_model = _random_prior(args.prior_size, dev)
    f = 2 ** (len(image_model.vae.config.block_out_channels) - 1)
    size = int(image_model.prior.transformer.config.sample_size) * f
    if kind == "prior":
        return WorldModels(image_model, plane), size
    if "camera_video_model" in checkpoints:
        from training.modules.video_model import CameraVideoModule

        video = CameraVideoModule.load(checkpoints["camera_video_model"], dev)
    else:
        video = _random_video(dev)
    base = video.model.base.config
    s = video.model.config.spatial_compression
    aux = VideoModelAuxViews(video.sampler(), (base.sample_height * s, base.sample_width * s),
                             steps=args.video_steps)  # fmt: skip
    if "lalrm" in checkpoints:
        from training.modules.lalrm import LaLRMModule

        lalrm = LaLRMModule.load(checkpoints["lalrm"], dev)
    else:
        lalrm = _random_lalrm(args.lalrm_size, dev)
    rec = LaLRMReconstructor(lalrm.model, lalrm.vae)
    return WorldModels(image_model, LaLRMDepth(rec), aux, rec), size


def zoom_step_latency(kind: str, args, dev, checkpoints: dict[str, str]) -> dict:
    models, S = _models(kind, args, dev, checkpoints)
    image = (toy_targets(1, 3, S, 2, generator=torch.Generator().manual_seed(0))[0] + 1) / 2
    image = image.to(dev)
    cfg = SynthesisConfig(steps=args.steps, fit_steps=args.fit_steps, aux_frames=9)
    K = K_from_fov(60.0, S, S, dtype=torch.float64)
    world = initial_world(image, K, torch.eye(4, dtype=torch.float64), "a landscape", models, cfg)
    stamps: list[tuple[str, float]] = []

    def stamp(message: str) -> None:
        _sync(dev)
        stamps.append((message.split(": ", 1)[-1], time.perf_counter()))

    runs = []
    for r in range(args.repeats + 1):  # the first run warms up (kernels, caches)
        stamps.clear()
        _sync(dev)
        t0 = time.perf_counter()
        added = zoom_step(world, "a closer look", models, cfg, seed=r, progress=stamp).levels[-1]
        _sync(dev)
        t1 = time.perf_counter()
        stages: dict[str, float] = {}
        for (name, a), (_, b) in zip(stamps, [*stamps[1:], ("end", t1)]):
            key = name.split(" (")[0]
            stages[key] = stages.get(key, 0.0) + b - a
        runs.append({"total_s": t1 - t0, "stages_s": stages})
    best = min(runs[1:], key=lambda x: x["total_s"])
    return {
        "models": models.describe(),
        "size": S,
        "steps": args.steps,
        "fit_steps": args.fit_steps,
        "total_s": round(best["total_s"], 4),
        "stages_s": {k: round(v, 4) for k, v in best["stages_s"].items()},
        "surfels_added": added.num_surfels,
    }


# ---- viewer FPS --------------------------------------------------------------------------


def synthetic_world(total: int, levels: int, p: int, aspect: float, dev) -> World:
    """``levels`` levels of ``total`` surfels in all: level l tiles the central ``1/p^l`` of the
    base view of a plane at depth 2 (a focal zoom), one surfel per pixel of an ``h × w`` grid of
    aspect ``w / h = aspect``."""
    h = int(math.sqrt(total / levels / aspect))
    w = int(h * aspect)
    K0 = K_from_fov(60.0, h, w, dtype=torch.float64)
    c2w = torch.eye(4, dtype=torch.float64)
    centre = torch.tensor([w / 2, h / 2], dtype=torch.float64)
    normal = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)
    point = torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64)
    sets, lvls, K = [], [], K0
    g = torch.Generator().manual_seed(0)
    for level in range(levels):
        if level:
            K, _ = zoom_camera(K, c2w, p, fixed_point(centre, (h, w), p), point, mode="focal")
        depth = plane_depth(point, normal, K, c2w, h, w).to(dev)
        image = torch.rand(3, h, w, generator=g).to(dev)
        s = backproject_surfels(image, depth, K, c2w)
        lam = level * math.log2(p)
        s.native_scale = torch.full_like(s.native_scale, lam)
        sets.append(s)
        fixed = fixed_point(centre, (h, w), p) if level else None
        lvls.append(
            ZoomLevel(level, "", K, c2w, lam, image, depth, fixed, point if level else None)
        )
    return World(merge(*sets), lvls, p, "focal")


def viewer_fps(args, dev) -> dict:
    t0 = time.perf_counter()
    W, H = args.width, args.height
    world = synthetic_world(args.surfels, args.levels, 2, W / H, dev)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cover = world_coverage(world)
    _sync(dev)
    cover_s = time.perf_counter() - t0
    w = world.size[1]
    zooms = [float(z) for z in args.zooms.split(",")] if args.zooms else [
        z / 2 for z in range(2 * (args.levels - 1) + 1)]  # fmt: skip
    rows = []
    for zoom in zooms:
        lv = world.levels[min(int(zoom), args.levels - 1)]
        frac = zoom - lv.index
        K, c2w = lv.K, lv.c2w
        if frac > 0:
            nxt = world.levels[lv.index + 1]
            K, c2w = zoom_camera(K, c2w, 2, nxt.fixed, nxt.target, t=frac, mode="focal")
        Kv = scale_K(K, W / w)  # the level grid's camera at the view's resolution
        mods, rasts = [], []
        for rep in range(args.repeats + 1):
            _sync(dev)
            a = time.perf_counter()
            s = modulated_surfels(world, Kv, c2w, cover)
            _sync(dev)
            b = time.perf_counter()
            out = rasterize_surfels(s, Kv, c2w, W, H, backend="auto")
            _sync(dev)
            c = time.perf_counter()
            if rep:
                mods.append(b - a)
                rasts.append(c - b)
        mod, rast = min(mods), min(rasts)
        rows.append({
            "zoom": zoom,
            "surfels_drawn": len(s),
            "modulation_ms": round(1e3 * mod, 3),
            "raster_ms": round(1e3 * rast, 3),
            "fps": round(1.0 / (mod + rast), 2),
            "raster_fps": round(1.0 / rast, 2),
            "alpha_mean": round(float(out.alpha.mean()), 4),
        })  # fmt: skip
        print(json.dumps(rows[-1]))
    return {
        "device": _device_name(dev),
        "surfels": len(world.surfels),
        "levels": args.levels,
        "resolution": [W, H],
        "build_s": round(build_s, 2),
        "coverage_s": round(cover_s, 4),
        "zooms": rows,
        "min_fps": min(r["fps"] for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CPU smoke run: small sizes")
    ap.add_argument("--device", default=None, help="default: cuda when available (cpu if --quick)")
    ap.add_argument("--prior-sizes", default="tiny,small", help="image prior sizes to time")
    ap.add_argument("--lalrm-size", default=None, help="LaLRM size (default: the prior's)")
    ap.add_argument("--sets", default="fallback,prior,full", help="model sets of the zoom step")
    ap.add_argument("--checkpoints", nargs="*", default=[], metavar="ROLE=DIR")
    ap.add_argument("--steps", type=int, default=50, help="zoom-stack DDPM steps")
    ap.add_argument("--fit-steps", type=int, default=20)
    ap.add_argument("--video-steps", type=int, default=25)
    ap.add_argument("--surfels", type=int, default=5_000_000)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--zooms", default="", help="comma list (default: 0, 0.5, ..., levels-1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (shared machine: 1)")
    ap.add_argument("--skip-step", action="store_true")
    ap.add_argument("--skip-viewer", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.device = args.device or "cpu"
        args.prior_sizes, args.steps, args.fit_steps, args.video_steps = "tiny", 5, 2, 2
        args.surfels, args.levels, args.width, args.height = 20_000, 3, 192, 108
        args.repeats = 1
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.set_num_threads(args.threads)
    checkpoints = dict(c.split("=", 1) for c in args.checkpoints)
    default_out = "worldgen_cpu_quick.json" if args.quick else f"worldgen_{dev.type}.json"
    out_path = Path(args.out or REPO / "benchmarks" / "results" / default_out)
    result = {
        "env": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": _device_name(dev),
            "threads": args.threads,
        },
    }
    if not args.skip_step:
        steps = result.setdefault("zoom_step", {})
        for size in args.prior_sizes.split(","):
            args.prior_size, args.lalrm_size = size, args.lalrm_size or size
            for kind in args.sets.split(","):
                row = zoom_step_latency(kind, args, dev, checkpoints)
                steps[f"{kind}_{size}"] = row
                print(json.dumps({f"{kind}_{size}": row}))
    if not args.skip_viewer:
        result["viewer"] = viewer_fps(args, dev)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
