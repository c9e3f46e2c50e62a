"""Synthetic-world rendering speed: frames/s for RGB+depth and worlds/hour for the demo recipe.

Cases, per world family (one world each, 16 poses of a sampled trajectory, best of --repeats):

    depth_only      baseline: one batch of camera rays through open3d, z-depth only
    rgbd            render(): RGB (materials, key light with shadow rays, sky) + depth + normals
                    + instance ids, supersample=1
    rgbd_noshadow   the same without shadow rays
    rgbd_ss2        the same with 2x2 supersampling (4 rays per pixel for RGB)
    rgbd_views      rgbd for all 16 poses in one ray batch (``render_views``, the clip path)

Ratios are per family: rgbd / depth_only and rgbd_ss2 / rgbd (time ratios).
worlds/hour is the demo recipe end to end: generate_world + make_clip (sample a valid 16-frame
trajectory, render it, point-cloud renders of the 12 targets from the 4 references, validate),
for --worlds worlds cycling through the families.

--shading-only measures just the material/pattern stage (the part that can move to a GPU) on
synthetic hits (random triangles and barycentric coordinates of each family's world, 65 536
hits = one 256x256 frame), on every device in --devices; it needs no open3d.

    .venv/bin/python benchmarks/synthetic_render.py [--size 256 --repeats 3 --worlds 6]
    python benchmarks/synthetic_render.py --shading-only --devices cpu,cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from datagen.trajectories import sample_trajectory  # noqa: E402
from datagen.worlds import (  # noqa: E402
    FAMILIES,
    WorldSpec,
    cast_depth,
    generate_world,
    make_clip,
    render,
    render_views,
)
from models.geometry import K_from_fov  # noqa: E402


def bench_family(family: str, size: int, repeats: int, seed: int, threads: int = 1) -> dict:
    """Best-of-``repeats`` frames/s per case; the cases take turns within each repeat, so load
    from other processes hits them alike."""
    world = generate_world(WorldSpec(family, seed))
    traj = sample_trajectory(world, 16, np.random.default_rng(seed), "random")
    K = K_from_fov(60.0, size, size, dtype=torch.float64).numpy()
    poses = list(traj.c2w)
    cases = {
        "depth_only": lambda c: cast_depth(world, K, c, size, size),
        "rgbd": lambda c: render(world, K, c, size, size, threads=threads),
        "rgbd_noshadow": lambda c: render(world, K, c, size, size, shadows=False, threads=threads),
        "rgbd_ss2": lambda c: render(world, K, c, size, size, 2, threads=threads),
    }
    # the clip path: all 16 views in one ray batch (render_views), timed per frame
    batched = {"rgbd_views": lambda: render_views(world, K, traj.c2w, size, size, threads=threads)}
    best = dict.fromkeys([*cases, *batched], float("inf"))
    for fn in cases.values():
        fn(poses[0])
    for _ in range(repeats):
        for name, fn in cases.items():
            t = time.perf_counter()
            for c2w in poses:
                fn(c2w)
            best[name] = min(best[name], (time.perf_counter() - t) / len(poses))
        for name, fn in batched.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], (time.perf_counter() - t) / len(poses))
    fps = {k: 1.0 / v for k, v in best.items()}
    return {
        "world_id": world.id,
        "triangles": world.num_triangles,
        "fps": {k: round(v, 2) for k, v in fps.items()},
        "ratio_rgbd_vs_depth_only_time": round(fps["depth_only"] / fps["rgbd"], 2),
        "ratio_ss2_vs_ss1_time": round(fps["rgbd"] / fps["rgbd_ss2"], 2),
        "ratio_views_vs_per_frame_speed": round(fps["rgbd_views"] / fps["rgbd"], 2),
    }


def bench_worlds(n: int, size: int, seed: int) -> dict:
    times = []
    for i in range(n):
        family = list(FAMILIES)[i % len(FAMILIES)]
        t = time.perf_counter()
        world = generate_world(WorldSpec(family, seed + 100 + i))
        clip = make_clip(world, "worldfm", seed=i, H=size, W=size)
        times.append(time.perf_counter() - t)
        assert clip.num_frames == 16
    mean = float(np.mean(times))
    return {
        "worlds": n,
        "seconds_per_world": [round(t, 2) for t in times],
        "mean_seconds": round(mean, 2),
        "worlds_per_hour": round(3600.0 / mean, 1),
    }


def bench_shading(device: str, repeats: int, seed: int, n: int = 65536) -> dict:
    """Material-stage throughput (hits/s) on synthetic hits, per family."""
    from datagen.worlds.materials import MaterialTable
    from datagen.worlds.ops import torch_threads

    out = {}
    for family in FAMILIES:
        world = generate_world(WorldSpec(family, seed))
        a = world.arrays
        rng = np.random.default_rng(seed)
        tri = rng.integers(0, len(a["triangles"]), n)
        w = rng.dirichlet(np.ones(3), n).astype(np.float32)
        corners = a["triangles"][tri]

        def interp(x, corners=corners, w=w):
            return torch.from_numpy((x[corners] * w[..., None]).sum(1).astype(np.float32))

        dev = torch.device(device)
        table = MaterialTable(world.materials, dev)
        args = [
            torch.from_numpy(a["tri_material"][tri].astype(np.int64)),
            interp(a["uv"]),
            interp(a["local"]),
            interp(a["vertices"]),
            torch.nn.functional.normalize(interp(a["normals"]), dim=1),
            torch.from_numpy(rng.uniform(0.0005, 0.02, n).astype(np.float32)),
        ]
        args = [x.to(dev) for x in args]
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        with torch_threads(1 if dev.type == "cpu" else None):
            table.albedo(*args)
            sync()
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                for _ in range(5):
                    table.albedo(*args)
                sync()
                best = min(best, (time.perf_counter() - t) / 5)
        out[family] = {"ms_per_frame": round(best * 1000, 2), "hits_per_s": round(n / best)}
    return out


def machine() -> dict:
    info = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import open3d as o3d

        info["open3d"] = o3d.__version__
    except ImportError:
        pass
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worlds", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/synthetic_render.json")
    ap.add_argument("--shading-only", action="store_true")
    ap.add_argument("--devices", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the shading stage")
    args = ap.parse_args()

    if args.shading_only:
        res = {d: bench_shading(d, args.repeats, args.seed) for d in args.devices.split(",")}
        print(json.dumps(res, indent=1))
        result = {"benchmark": "synthetic_render_shading", "shading": res, "machine": machine()}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print("wrote", args.out)
        return

    load_start = os.getloadavg()
    families = {
        f: bench_family(f, args.size, args.repeats, args.seed, args.threads) for f in FAMILIES
    }
    for f, r in families.items():
        print(f, json.dumps(r))
    mean = {
        k: round(float(np.mean([r["fps"][k] for r in families.values()])), 2)
        for k in next(iter(families.values()))["fps"]
    }
    demo = bench_worlds(args.worlds, args.size, args.seed)
    print("mean fps", mean, "\ndemo", demo)
    result = {
        "benchmark": "synthetic_render",
        "size": [args.size, args.size],
        "families": families,
        "mean_fps": mean,
        "target_fps_rgbd": 20,
        "demo_recipe": {"recipe": "worldfm (16 frames, 4 ref + 12 targets)", **demo},
        "machine": {
            **machine(),
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "torch_threads_shading": args.threads,
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
