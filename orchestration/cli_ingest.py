"""`wonderforge estimate-poses` and `wonderforge ingest`, and the demo's ingestion step.

estimate-poses --images DIR --out DIR   SfM over an image folder (or a video): transforms.json
                                        (nerfstudio convention), a COLMAP text model in
                                        sparse/0/ and the sparse points in points3D.ply
ingest PATH... --out STORE_PREFIX       the ingestion pipeline per item: shard set and
                                        quality.json under <out>/<item id>/, a table of results;
                                        exit code 1 only when every item failed
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The demo's video: an orbit through the demo indoor world (192 px, 32 frames, mp4). Rendered
# footage is pinhole, so SfM uses SIMPLE_PINHOLE; clips are ingested at 128 px with 48 depth
# planes (about 30 s of SfM + MVS on 2 cores).
DEMO_VIDEO = {"family": "indoor", "seed": 0, "frames": 32, "size": 192, "trajectory_seed": 1}
DEMO_INGEST = {
    "video_clips": {"config": {"num_clips": 1, "max_stride": 2}},
    "camera_poses": {"config": {"camera_model": "SIMPLE_PINHOLE", "clip_max_side": 128}},
    "depth_maps": {"config": {"num_depths": 48}},
}


def _write_ply(path: Path, points, colors) -> None:
    import numpy as np
    from plyfile import PlyData, PlyElement

    v = np.empty(
        len(points),
        dtype=[(c, "f4") for c in "xyz"] + [(c, "u1") for c in ("red", "green", "blue")],
    )
    for i, c in enumerate("xyz"):
        v[c] = points[:, i]
    for i, c in enumerate(("red", "green", "blue")):
        v[c] = colors[:, i]
    PlyData([PlyElement.describe(v, "vertex")]).write(str(path))


def cmd_estimate_poses(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from datagen.camera_formats import write_colmap, write_nerfstudio
    from datagen.ingest.errors import IngestError
    from datagen.ingest.images import save_png
    from datagen.ingest.sfm import ColmapEstimator, SfmError
    from datagen.ingest.sources import open_source

    out = Path(args.out)
    try:
        source = open_source(args.images, max_side=args.max_side)
        est = ColmapEstimator(matcher=args.matcher, camera_model=args.camera_model)
        result = est.estimate(source.frames, source.timestamps, names=source.frame_names)
    except (IngestError, SfmError, ValueError) as error:
        print(f"estimate-poses failed: {error}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    cams = result.cameras
    folder = Path(args.images)
    copy = result.undistorted or source.layout != "images" or args.max_side is not None
    if copy:  # undistorted (or resized, or decoded) frames go next to the cameras
        (out / "images").mkdir(exist_ok=True)
        frames = result.frames if result.undistorted else source.frames[result.registered]
        names = [f"{Path(n).stem}.png" for n in cams.names]
        for name, rgb in zip(names, frames):
            save_png(rgb, out / "images" / name)
        files = [f"images/{n}" for n in names]
    else:
        names = list(cams.names)
        files = [os.path.relpath(folder / n, out) for n in names]
    write_nerfstudio(replace(cams, names=files), out / "transforms.json")
    write_colmap(replace(cams, names=names), out / "sparse" / "0")
    _write_ply(out / "points3D.ply", result.points3d, result.point_colors)
    s = result.stats
    print(
        f"registered {int(s['num_registered'])}/{int(s['num_frames'])} frames, "
        f"{int(s['num_points'])} points, reprojection error "
        f"{s['mean_reprojection_error_px']:.3f} px ({result.estimator})"
    )
    print(f"  {out / 'transforms.json'}")
    print(
        f"  {out / 'sparse' / '0'}  (COLMAP text model; images: {folder if not copy else out / 'images'})"
    )
    return 0


def _options(args: argparse.Namespace):
    from datagen.ingest.depth import MvsParams
    from datagen.ingest.pipeline import IngestOptions

    return IngestOptions(
        recipe=args.recipe,
        num_clips=args.clips,
        camera_model=args.camera_model,
        clip_max_side=args.clip_max_side,
        mvs=MvsParams(num_depths=args.num_depths),
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    from datagen.ingest.pipeline import ingest_paths
    from datagen.ingest.quality import quality_table
    from datagen.shards import write_shard_set
    from datagen.store import store_from_env_uri

    store = store_from_env_uri(args.out)
    open_kwargs = {"max_side": args.max_side, "fps": args.fps, "max_frames": args.max_frames}
    reports = ingest_paths(
        args.paths, args.seed, device=args.device, options=_options(args), open_kwargs=open_kwargs
    )
    rows = []
    for rep in reports:
        records = [o.record() for o in rep.outcomes]
        store.put_json(
            f"{rep.video_id}/quality.json",
            {"path": str(rep.path), "error": rep.error, "accepted": rep.accepted, "clips": records},
        )
        clips = [o.clip for o in rep.outcomes if o.accepted]
        if clips:
            write_shard_set(
                store, rep.video_id, clips, dataset="real", partition=rep.video_id, progress=False
            )
        note = rep.error or next((f"{r['key']}: {r['reason']}" for r in records if r["reason"]), "")
        status = "failed" if rep.error else ("ok" if rep.accepted else "rejected")
        rows.append(
            (str(rep.path), rep.video_id, status, rep.accepted, len(records) - rep.accepted, note)
        )
        if records and args.verbose:
            print(quality_table(records))
    width = max(len(r[0]) for r in rows)
    idw = max(len(r[1]) for r in rows)
    print(f"{'item':<{width}}  {'id':<{idw}}  {'status':<8} {'ok':>3} {'rej':>3}  notes")
    for path, vid, status, ok, rej, note in rows:
        print(f"{path:<{width}}  {vid:<{idw}}  {status:<8} {ok:>3} {rej:>3}  {note}")
    print(f"shards and quality.json under {store.uri('')}")
    return 0 if any(r[2] == "ok" for r in rows) else 1


def add_ingest_commands(sub) -> None:
    """Register `estimate-poses` and `ingest` on the CLI's subparsers."""
    est = sub.add_parser(
        "estimate-poses", help="SfM over an image folder: transforms.json + COLMAP model"
    )
    est.add_argument("--images", required=True, help="image folder (or a video file)")
    est.add_argument("--out", required=True, help="output directory")
    est.add_argument("--matcher", default="auto", choices=["auto", "sequential", "exhaustive"])
    est.add_argument("--camera-model", default="SIMPLE_RADIAL", help="COLMAP camera model")
    est.add_argument("--max-side", type=int, default=None, help="downsize frames first")
    est.set_defaults(func=cmd_estimate_poses)
    ing = sub.add_parser("ingest", help="videos / image folders / layouts -> clips -> shard sets")
    ing.add_argument("paths", nargs="+", metavar="PATH")
    ing.add_argument("--out", required=True, help="store prefix: a path, file:// or s3:// URI")
    ing.add_argument("--recipe", default="worldfm", choices=["worldfm", "wonderland"])
    ing.add_argument("--clips", type=int, default=1, help="clips per item")
    ing.add_argument("--seed", type=int, default=0)
    ing.add_argument("--max-side", type=int, default=640, help="decode frames at most this size")
    ing.add_argument("--clip-max-side", type=int, default=None, help="downsize clips (MVS cost)")
    ing.add_argument("--fps", type=float, default=None, help="videos: frames per second to keep")
    ing.add_argument("--max-frames", type=int, default=None, help="first N frames only")
    ing.add_argument("--camera-model", default="SIMPLE_RADIAL", help="COLMAP camera model")
    ing.add_argument("--num-depths", type=int, default=64, help="plane-sweep depth planes")
    ing.add_argument("--device", default="cpu", help="torch device for MVS and anchors")
    ing.add_argument("-v", "--verbose", action="store_true", help="print each item's quality table")
    ing.set_defaults(func=cmd_ingest)


def demo_ingest(instance, defs, run_job, force: bool) -> None:
    """Render a short video of a demo world into `$WONDERFORGE_HOME/inbox/`, register it as a
    `videos` partition and run `ingest_video` for it (skipped when already materialized).
    `run_job(job, **execute_kwargs)` runs a job in-process."""
    from dagster import AssetKey

    from assets.partitions import VIDEOS
    from datagen.ingest.registry import list_inbox, register_item
    from datagen.store import store_from_env
    from datagen.worlds.spec import WorldSpec
    from datagen.worlds.video import world_video
    from orchestration.home import project_home

    v = DEMO_VIDEO
    spec = WorldSpec(v["family"], v["seed"])
    path = project_home() / "inbox" / f"demo-{spec.world_id}.mp4"
    if not path.exists():
        world_video(path, spec, v["frames"], v["size"], v["trajectory_seed"], "orbit")
    (item,) = [i for i in list_inbox(path.parent) if i.name == path.name]
    key = register_item(store_from_env(), item)
    if key not in instance.get_dynamic_partitions(VIDEOS.name):
        instance.add_dynamic_partitions(VIDEOS.name, [key])
    done = key in instance.get_materialized_partitions(AssetKey("real_shards"))
    if done and not force:
        print(f"ingest_video [{key}]: already materialized (--force to redo)")
        return
    job = defs.resolve_job_def("ingest_video")
    run_job(job, partition_key=key, run_config={"ops": DEMO_INGEST})
