"""`wonderforge generate`, `wonderforge view` and `wonderforge add-world-request`.

generate --image IMG --prompts prompts.txt --out DIR   a multi-scale world, generated here
         [--checkpoints ROLE=PATH|URI|none ...] [--levels N] [--zoom 2|4] [--steps S] [--seed S]
         [--submit]                                    ... or stored as a world request instead
view DIR                                               viser on 127.0.0.1 with a zoom slider
add-world-request --image IMG --prompts prompts.txt    a `world_requests` partition of the
                                                       `generated_worlds` asset

Wire them in with `add_worldgen_commands(sub)` (orchestration/cli.py's `build_parser`).
"""

from __future__ import annotations

import argparse
import sys


def parse_checkpoints(values: list[str] | None) -> dict[str, str]:
    """``["frame_stage1=DIR", "lalrm=none"]`` -> ``{"frame_stage1": "DIR", "lalrm": "none"}``."""
    out = {}
    for value in values or []:
        role, sep, path = value.partition("=")
        if not sep or not role or not path:
            raise ValueError(f"--checkpoints {value!r}: expected ROLE=PATH|URI|none")
        out[role] = path
    return out


def _request_settings(args: argparse.Namespace) -> dict:
    settings = {"p": args.zoom, "steps": args.steps, "seed": args.seed, "size": args.size,
                "zoom_mode": args.zoom_mode}  # fmt: skip
    if args.levels is not None:
        settings["levels"] = args.levels
    if args.centre is not None:
        settings["centres"] = [list(args.centre)]
    return settings


def _store_or_none():
    from datagen.store import store_from_env

    try:
        return store_from_env()
    except Exception as error:  # the registry is optional: generation falls back without it
        print(f"artifact store unavailable ({error}); using fallbacks", file=sys.stderr)
        return None


def submit_request(args: argparse.Namespace) -> int:
    """Store the request and add its `world_requests` partition."""
    from orchestration.home import prepare_dagster_home

    prepare_dagster_home()
    from dagster import DagsterInstance

    from assets.partitions import WORLD_REQUESTS
    from datagen.store import store_from_env
    from datagen.world_requests import WorldRequestError, request_from_files, save_request

    try:
        data, suffix, request = request_from_files(
            args.image, args.prompts, **_request_settings(args)
        )
    except WorldRequestError as error:
        print(f"world request failed: {error}", file=sys.stderr)
        return 1
    store = store_from_env()
    rid = save_request(store, data, suffix, request)
    instance = DagsterInstance.get()
    if rid not in set(instance.get_dynamic_partitions(WORLD_REQUESTS.name)):
        instance.add_dynamic_partitions(WORLD_REQUESTS.name, [rid])
    print(rid)
    print(f"stored at {store.uri(f'requests/worlds/{rid}')}; materialize the `generated_worlds` "
          f"partition {rid} (`wonderforge ui`)")  # fmt: skip
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    if args.submit:
        return submit_request(args)
    if not args.out:
        print("generate: --out DIR is required (or --submit)", file=sys.stderr)
        return 2
    from datagen.world_requests import WorldRequestError, decode_image, request_from_files
    from training.worldgen import GenerationOptions, generate

    try:
        checkpoints = parse_checkpoints(args.checkpoints)
        data, _, request = request_from_files(args.image, args.prompts, **_request_settings(args))
        options = GenerationOptions(
            levels=request.levels, p=request.p, steps=request.steps, seed=request.seed,
            size=request.size, zoom_mode=request.zoom_mode, centres=request.centres,
            frames_per_level=args.frames_per_level, orbit_frames=args.orbit_frames,
            fit_steps=args.fit_steps, photo_guidance=not args.no_photo_guidance,
            depth=args.depth, depth_kind=args.depth_kind,
            **({"device": args.device} if args.device else {}),
        )  # fmt: skip
        side = request.size or 512
        image = decode_image(data, (side, side), str(args.image))
        manifest = generate(image, request.prompts, args.out, options, checkpoints,
                            _store_or_none(), source=str(args.image))  # fmt: skip
    except (ValueError, FileNotFoundError, LookupError, WorldRequestError) as error:
        print(f"generate failed: {error}", file=sys.stderr)
        return 1
    print(f"world with {manifest['num_levels']} levels, {manifest['num_surfels']} surfels "
          f"in {args.out}")  # fmt: skip
    for level in manifest["levels"]:
        print(f"  level {level['index']}: {level['num_surfels']:>8} surfels  {level['files']['ply']}"
              f"  ({level['prompt']})")  # fmt: skip
    print(f"  zoom video      {args.out}/zoom.mp4 ({manifest['videos']['zoom_frames']} frames)")
    print(f"  manifest        {args.out}/world.json")
    if manifest["consistency_psnr_db"]:
        print(f"  cross-scale PSNR of the rendered levels (dB): {manifest['consistency_psnr_db']}")
    for fallback in manifest["fallbacks"]:
        print(f"  fallback        {fallback}")
    print(f"  view it with    wonderforge view {args.out}")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from training.world_viewer import MISSING_VISER, VIEWER_EXTRA

    try:
        import viser  # noqa: F401
    except ImportError:
        print(MISSING_VISER.format(extra=VIEWER_EXTRA), file=sys.stderr)
        return 1
    from datagen.world_files import WorldFileError
    from training.world_viewer import serve

    try:
        serve(args.dir, args.host, args.port, args.mode)
    except WorldFileError as error:
        print(f"view failed: {error}", file=sys.stderr)
        return 1
    return 0


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="the input image (level 0)")
    parser.add_argument("--prompts", required=True, help="text file: one prompt per level")
    parser.add_argument("--levels", type=int, help="levels to generate (default: one per prompt)")
    parser.add_argument("--zoom", type=int, choices=(2, 4), default=2, help="zoom per level")
    parser.add_argument("--steps", type=int, default=50, help="zoom-stack sampling steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, help="working resolution (default: the prior's)")
    parser.add_argument("--zoom-mode", choices=("dolly", "focal"), default="dolly")
    parser.add_argument("--centre", type=float, nargs=2, metavar=("U", "V"),
                        help="zoom centre in normalised image coordinates (default 0.5 0.5)")  # fmt: skip


def add_worldgen_commands(sub) -> None:
    """Add `generate`, `view` and `add-world-request` to the `wonderforge` subparsers."""
    gen = sub.add_parser("generate", help="generate a multi-scale world from one image")
    _add_inputs(gen)
    gen.add_argument("--out", help="output folder")
    gen.add_argument("--checkpoints", nargs="*", metavar="ROLE=PATH",
                     help="frame_stage1 / lalrm / camera_video_model = folder, URI or none "
                     "(default: the registry's latest)")  # fmt: skip
    gen.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    gen.add_argument("--fit-steps", type=int, default=20, help="Adam steps fitting new surfels")
    gen.add_argument("--frames-per-level", type=int, default=12, help="zoom video frames/level")
    gen.add_argument("--orbit-frames", type=int, default=16, help="frames of each level's orbit")
    gen.add_argument("--depth", help="monocular depth estimator module:function (image -> depth)")
    gen.add_argument("--depth-kind", choices=("depth", "disparity"), default="depth")
    gen.add_argument("--no-photo-guidance", action="store_true",
                     help="ablation: no photograph-based zoom on the coarse render")  # fmt: skip
    gen.add_argument("--submit", action="store_true",
                     help="store as a world request (generated_worlds partition) instead")  # fmt: skip
    gen.set_defaults(func=cmd_generate)
    view = sub.add_parser("view", help="view a generated world (viser, zoom slider)")
    view.add_argument("dir", help="a folder written by `wonderforge generate`")
    view.add_argument("--host", default="127.0.0.1")
    view.add_argument("--port", type=int, default=8080)
    view.add_argument("--mode", choices=("splats", "points"), default="splats")
    view.set_defaults(func=cmd_view)
    add = sub.add_parser("add-world-request", help="store a world request for generated_worlds")
    _add_inputs(add)
    add.set_defaults(func=submit_request)
