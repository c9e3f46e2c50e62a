"""Real-video ingestion speed: seconds per 16-frame clip by stage (SfM, MVS, anchors).

A video is rendered from a procedural world (default: the demo indoor world, an orbit), then the
ingestion stages run on it as `ingest_source` does:

    sfm       pycolmap SfM over the clip's frames (SIFT on CPU, exhaustive matching, shared
              SIMPLE_PINHOLE camera), in its worker process: all CPU threads it is given
    mvs       plane-sweep depth of the 16 frames (64 planes, 6 neighbours, 7x7 ZNCC) + the
              geometric filter, on every device in --devices (CPU: --mvs-threads torch threads)
    anchors   global point cloud of the 4 references (voxel-merged) rendered at the 12 targets

Each stage is timed --repeats times (best kept). Results go to benchmarks/results/ingest.json
(or --out); GPU rows appear only where CUDA exists.

    .venv/bin/python benchmarks/ingest.py [--size 256 --repeats 2 --devices cpu,cuda]
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

from datagen.ingest.depth import MvsParams, clip_depths  # noqa: E402


def best_of(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--family", default="indoor")
    ap.add_argument("--world-seed", type=int, default=0)
    ap.add_argument("--trajectory-seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument("--mvs-threads", type=int, default=1)
    ap.add_argument("--sfm-threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ingest.json"))
    ap.add_argument(
        "--save-geometry",
        default=None,
        help="after SfM, save the clip (rgb, K, c2w, sparse points) to this .npz and stop",
    )
    ap.add_argument(
        "--geometry",
        default=None,
        help="MVS only, on a clip saved with --save-geometry (for a GPU machine without "
        "open3d / pycolmap)",
    )
    args = ap.parse_args()
    if args.geometry:
        return mvs_only(args)
    from datagen.ingest.assemble import AnchorParams, clip_anchors
    from datagen.ingest.plan import ClipPlan, VideoFrames
    from datagen.ingest.poses import clip_geometry, estimate_poses
    from datagen.ingest.sfm import ColmapEstimator, pycolmap_version
    from datagen.trajectories import sample_trajectory
    from datagen.worlds import WorldSpec, generate_world
    from datagen.worlds.video import render_frames
    from models.geometry import ate_rmse

    n, size = args.frames, args.size

    world = generate_world(WorldSpec(args.family, args.world_seed))
    traj = sample_trajectory(world, n, np.random.default_rng(args.trajectory_seed), "orbit")
    t0 = time.perf_counter()
    gt = render_frames(world, traj.c2w, size, size)
    render_s = time.perf_counter() - t0
    vf = VideoFrames("bench", gt["rgb"], np.arange(n) / 10.0, list(range(n)), None, "video", "", "")
    refs = [round(x) for x in np.linspace(0, n - 1, 4)]
    plan = ClipPlan("bench-worldfm-000", "worldfm", list(range(n)), refs,
                    [i for i in range(n) if i not in refs])  # fmt: skip

    est = ColmapEstimator(matcher="exhaustive", camera_model="SIMPLE_PINHOLE",
                          num_threads=args.sfm_threads)  # fmt: skip
    sfm_s, sfm_all, poses = best_of(lambda: estimate_poses(vf, est), args.repeats)
    geom, q, reason = clip_geometry(plan, vf, poses)
    if geom is None:
        raise SystemExit(f"SfM result rejected: {reason}")
    if args.save_geometry:
        arrays = {k: getattr(geom, k) for k in ("rgb", "K", "c2w", "points")}
        np.savez_compressed(args.save_geometry, **arrays, world=world.id)
        print(f"saved the clip's geometry to {args.save_geometry}")
        return
    extent = float(np.linalg.norm(np.ptp(gt["c2w"][:, :3, 3], axis=0)))
    ate = ate_rmse(torch.from_numpy(geom.c2w), torch.from_numpy(gt["c2w"]))  # metres (Sim(3))

    rows = {"sfm": {"device": "cpu", "best_s": sfm_s, "all_s": sfm_all}}
    mvs = MvsParams(cpu_threads=args.mvs_threads)
    depth = conf = None
    for dev in args.devices.split(","):
        if dev.startswith("cuda") and not torch.cuda.is_available():
            continue
        if dev.startswith("cuda"):  # warm-up (kernels, allocator) outside the timing
            clip_depths(geom.rgb, geom.K, geom.c2w, geom.points, mvs, device=dev)
            torch.cuda.synchronize()
        s, all_s, (d, c, stats) = best_of(
            lambda dev=dev: clip_depths(geom.rgb, geom.K, geom.c2w, geom.points, mvs, device=dev),
            args.repeats,
        )
        rows[f"mvs_{dev}"] = {
            "device": torch.cuda.get_device_name() if dev.startswith("cuda") else "cpu",
            "best_s": s,
            "all_s": all_s,
            "depth_coverage": stats["depth_coverage"],
            "static_score": stats["static_score"],
        }
        depth, conf = (d, c) if depth is None else (depth, conf)
    a_s, a_all, (_pcr, mask, npts) = best_of(
        lambda: clip_anchors(geom, depth, conf, AnchorParams()), args.repeats
    )
    rows["anchors"] = {"device": "cpu", "best_s": a_s, "all_s": a_all, "points": npts,
                       "coverage": float(mask.mean())}  # fmt: skip
    cpu_total = rows["sfm"]["best_s"] + rows["mvs_cpu"]["best_s"] + rows["anchors"]["best_s"]
    report = {
        "config": vars(args),
        "scene": {"world": world.id, "template": traj.template, "render_s": render_s},
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "pycolmap": pycolmap_version(),
            "cpu_count": os.cpu_count(),
            "load_avg": os.getloadavg(),
        },
        "quality": {**{k: float(v) for k, v in q.items()}, "ate_over_extent": ate / extent},
        "stages": rows,
        "cpu_seconds_per_clip": cpu_total,
        "ratios": {k: v["best_s"] / cpu_total for k, v in rows.items() if k != "mvs_cuda"},
    }
    if "mvs_cuda" in rows:
        report["ratios"]["mvs_cpu_over_cuda"] = (
            rows["mvs_cpu"]["best_s"] / rows["mvs_cuda"]["best_s"]
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for k, v in rows.items():
        print(f"{k:<10} {v['device']:<24} {v['best_s']:8.2f} s")
    print(f"CPU total {cpu_total:.1f} s per {n}-frame clip at {size}x{size}; written {args.out}")


def mvs_only(args) -> None:
    """Time ``clip_depths`` on a saved clip on each of ``--devices``; JSON like ``main``'s."""
    g = np.load(args.geometry)
    rgb, K, c2w, points = g["rgb"], g["K"], g["c2w"], g["points"]
    mvs = MvsParams(cpu_threads=args.mvs_threads)
    rows = {}
    for dev in args.devices.split(","):
        if dev.startswith("cuda") and not torch.cuda.is_available():
            continue
        if dev.startswith("cuda"):
            clip_depths(rgb, K, c2w, points, mvs, device=dev)
            torch.cuda.synchronize()
        s, all_s, (_d, _c, stats) = best_of(
            lambda dev=dev: clip_depths(rgb, K, c2w, points, mvs, device=dev), args.repeats
        )
        rows[f"mvs_{dev}"] = {
            "device": torch.cuda.get_device_name() if dev.startswith("cuda") else "cpu",
            "best_s": s,
            "all_s": all_s,
            "per_frame_ms": 1000 * s / len(rgb),
            "depth_coverage": stats["depth_coverage"],
        }
        print(f"mvs_{dev:<6} {rows[f'mvs_{dev}']['device']:<24} {s:8.3f} s per clip")
    report = {
        "config": vars(args),
        "scene": {"world": str(g["world"]), "frames": len(rgb), "size": list(rgb.shape[1:3])},
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
        "stages": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
