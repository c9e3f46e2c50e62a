"""`wonderforge` command line: info, demo, ui."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from orchestration.cli_ingest import add_ingest_commands, demo_ingest
from orchestration.cli_worldgen import add_worldgen_commands
from orchestration.home import GPU_POOL, prepare_dagster_home, project_home
from orchestration.summary import format_table, summary_rows

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _store_description() -> str:
    from datagen.store import store_from_env

    try:
        return store_from_env().uri("")
    except Exception as error:  # surfaced as text: `info` must always print
        return f"unavailable ({error})"


def cmd_info(args: argparse.Namespace) -> int:
    from training.environment import environment_report

    report = environment_report()
    report["project_home"] = str(project_home())
    report["dagster_home"] = os.environ.get("DAGSTER_HOME") or str(project_home() / "dagster")
    report["artifact_store"] = _store_description()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    accel = report["accelerators"]
    print(f"wonderforge {report['packages']['wonderforge']}  (Python {report['python']})")
    print(f"  project home    {report['project_home']}")
    print(f"  dagster home    {report['dagster_home']}")
    print(f"  artifact store  {report['artifact_store']}")
    if accel["cuda_available"]:
        for device in accel["devices"]:
            print(
                f"  cuda:{device['index']}          {device['name']} ({device['memory_gib']} GiB)"
            )
    else:
        print(f"  accelerator     none: CPU only ({accel['cpu_threads']} threads)")
    print("  packages")
    for name, version in report["packages"].items():
        print(f"    {name:<13} {version or 'not installed'}")
    return 0


def ensure_gpu_pool(instance) -> None:
    """Give the `gpu` pool one slot per node unless someone has already set it."""
    storage = instance.event_log_storage
    try:
        if GPU_POOL not in storage.get_concurrency_keys():
            storage.set_concurrency_slots(GPU_POOL, 1)
    except NotImplementedError:
        pass


DEMO_CLIPS = {
    "worldfm_clips": 2,
    "wonderland_clips": 1,
    "wonderland_seen": 13,
    "wonderland_stride": 2,
    "wonderland_unseen": 8,
    "height": 64,
    "width": 64,
}


# LaLRM demo data: 32x32 frames, 2 seen + 2 unseen views, one clip per step
DEMO_LALRM_DATA = [
    "--data.init_args.task_config="
    "{num_context: 9, stride: 1, num_seen: 2, num_unseen: 2, height: 32, width: 32}",
    "--data.init_args.batch_size=1",
]

# Tiny training runs for the demo: about 1.5 min of CPU in all (one thread per run: two threads
# per process stall each other on a shared 2-core machine).
DEMO_TRAINING = {
    "image_vae": {"size": "tiny", "max_steps": 40, "overrides": []},
    "video_vae": {
        "size": "tiny",
        "max_steps": 10,
        "overrides": ["--data.init_args.batch_size=1"],
    },
    "camera_video_model": {"size": "tiny", "max_steps": 20, "overrides": []},
    # the frame-model chain (docs/frame-model.md); synthetic sets only after stage I: the demo's
    # real clips (128²) and synthetic clips (64²) cannot share a batch
    "frame_model_stage1": {"size": "tiny", "max_steps": 20, "overrides": [], "preview_steps": 10},
    "frame_model_stage2": {
        "size": "tiny",
        "max_steps": 20,
        "overrides": [],
        "include_real": False,
        "preview_steps": 10,
    },
    "frame_model_synthetic_ft": {"size": "tiny", "max_steps": 4, "overrides": []},
    "teacher_pairs": {"num_pairs": 8, "steps": 10, "include_real": False},
    "frame_model_stage3": {"size": "tiny", "max_steps": 4, "overrides": [], "include_real": False},
    "frame_model_eval": {"teacher_steps": 10, "max_clips": 2},
    # LaLRM (docs/lalrm.md): both stages on DEMO_LALRM_DATA
    "lalrm_stage1": {"size": "tiny", "max_steps": 10, "overrides": DEMO_LALRM_DATA},
    "lalrm_stage2": {"size": "tiny", "max_steps": 5, "overrides": DEMO_LALRM_DATA},
    "lalrm_eval": {"max_clips": 2, "max_unseen": 4, "flythrough_frames": 24},
}
DEMO_LAUNCHER = {"config": {"cpu_threads": 1, "report_every_s": 10.0}}

# generated out-of-domain videos: 2 videos of 9 frames from demo-world renders, 4 DDIM steps
DEMO_BATCH = "demo"
DEMO_GENERATION = {"num_videos": 2, "steps": 4, "guidance_scale": 1.0, "device": "cpu"}

# the demo world: 3 levels (zoom ×2 each) grown from a 64² preview of the first demo world
DEMO_WORLD_SIZE = 64
DEMO_WORLD_LEVELS = 3
DEMO_WORLD_REQUEST = {"p": 2, "steps": 10, "size": DEMO_WORLD_SIZE, "seed": 0}
DEMO_WORLD_RUN = {"frames_per_level": 4, "orbit_frames": 4, "fit_steps": 10, "refine_steps": 30}


def register_worlds(instance, specs) -> list[str]:
    """Store the specs and add their world ids as `worlds` partitions (idempotent)."""
    from assets.partitions import WORLDS
    from datagen.store import store_from_env
    from datagen.worlds.catalog import save_spec

    store = store_from_env()
    ids = [save_spec(store, spec) for spec in specs]
    existing = set(instance.get_dynamic_partitions(WORLDS.name))
    new = [world_id for world_id in ids if world_id not in existing]
    if new:
        instance.add_dynamic_partitions(WORLDS.name, new)
    return ids


def _materialized(instance, asset: str, partition: str) -> bool:
    from dagster import AssetKey

    done = instance.get_materialized_partitions(AssetKey(asset))
    return partition in done


def _run(instance, job, summary, on_event_factory, **kwargs) -> bool:
    import uuid

    run_id = str(uuid.uuid4())
    on_event, run_summary = on_event_factory()
    instance.add_event_listener(run_id, on_event)
    label = f" [{kwargs['partition_key']}]" if kwargs.get("partition_key") else ""
    print(f"{job.name}{label}: run {run_id}")
    run_config = {**QUIET_LOGS, **kwargs.pop("run_config", {})}
    result = job.execute_in_process(
        instance=instance, run_id=run_id, raise_on_error=False, run_config=run_config, **kwargs
    )
    summary["materialized"].update(run_summary["materialized"])
    summary["failed"] += run_summary["failed"]
    if not result.success:
        summary["failed_runs"].append(run_id)
    return result.success


def _demo_selection(instance, defs, force: bool) -> tuple[set[str], set[str]]:
    """(the `demo` job's assets to run, the trained models skipped as already materialized)."""
    from dagster import AssetKey, AssetSelection

    from orchestration.jobs import DEMO_GROUPS

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in AssetSelection.groups(*DEMO_GROUPS).resolve(graph)}
    done = set()
    if not force:
        done = {
            key
            for key in DEMO_TRAINING
            if key in keys and instance.get_latest_materialization_event(AssetKey(key))
        }
    for key in sorted(done):
        print(f"{key}: already trained (--force to retrain)")
    return keys - done, done


def _latest_uri(instance, key: str) -> str | None:
    from dagster import AssetKey

    event = instance.get_latest_materialization_event(AssetKey(key))
    value = event.asset_materialization.metadata.get("uri") if event else None
    return getattr(value, "value", None)


def _downstream_of_generation(defs) -> set[str]:
    """Assets that need the generated videos (LaLRM stage 2 and what follows it)."""
    from dagster import AssetSelection

    graph = defs.resolve_asset_graph()
    down = AssetSelection.assets("generated_shards").downstream().resolve(graph)
    return {k.to_user_string() for k in down}


def _run_demo_assets(defs, run, keys: set[str]) -> None:
    from dagster import AssetKey

    if not keys:
        return
    ops = {key: {"config": DEMO_TRAINING[key]} for key in keys if key in DEMO_TRAINING}
    run(
        defs.resolve_job_def("demo"),
        asset_selection=[AssetKey(key) for key in sorted(keys)],
        run_config={"ops": ops, "resources": {"launcher": DEMO_LAUNCHER}},
    )


def demo_generation(instance, run, defs, force: bool) -> None:
    """One `generation_batches` partition ("demo") sampled with the tiny camera-guided model."""
    from assets.partitions import GENERATION_BATCHES

    batch = DEMO_BATCH
    if batch not in set(instance.get_dynamic_partitions(GENERATION_BATCHES.name)):
        instance.add_dynamic_partitions(GENERATION_BATCHES.name, [batch])
    elif not force and _materialized(instance, "generated_shards", batch):
        print(f"generate_videos [{batch}]: already materialized (--force to redo)")
        return
    run(
        defs.resolve_job_def("generate_videos"),
        partition_key=batch,
        run_config={"ops": {"generated_videos": {"config": DEMO_GENERATION}}},
    )


def demo_world(instance, run, defs, force: bool) -> None:
    """A three-level world request from a demo world's preview and its per-level captions."""
    import io

    from PIL import Image

    from assets.partitions import WORLD_REQUESTS
    from datagen.store import store_from_env
    from datagen.world_requests import WorldRequest, save_request
    from datagen.worlds import generate_world
    from datagen.worlds.catalog import demo_specs
    from datagen.worlds.render import preview_image

    spec = demo_specs()[0]
    world = generate_world(spec)
    buf = io.BytesIO()
    Image.fromarray(preview_image(world, DEMO_WORLD_SIZE, DEMO_WORLD_SIZE)).save(buf, "PNG")
    prompts = world.captions()[:DEMO_WORLD_LEVELS]
    request = WorldRequest(prompts, **DEMO_WORLD_REQUEST)
    rid = save_request(store_from_env(), buf.getvalue(), ".png", request)
    if rid not in set(instance.get_dynamic_partitions(WORLD_REQUESTS.name)):
        instance.add_dynamic_partitions(WORLD_REQUESTS.name, [rid])
    elif not force and _materialized(instance, "generated_worlds", rid):
        print(f"generate_world [{rid}]: already materialized (--force to redo)")
        return
    run(
        defs.resolve_job_def("generate_world"),
        partition_key=rid,
        run_config={"ops": {"generated_worlds": {"config": DEMO_WORLD_RUN}}},
    )


def cmd_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    prepare_dagster_home()
    # training subprocesses log to their run folders only (the failure message quotes the log)
    quiet = "WONDERFORGE_QUIET_RUNS" not in os.environ
    if quiet:
        os.environ["WONDERFORGE_QUIET_RUNS"] = "1"
    try:
        return _demo(args, started)
    finally:
        if quiet:
            os.environ.pop("WONDERFORGE_QUIET_RUNS", None)


def _demo(args: argparse.Namespace, started: float) -> int:
    from dagster import DagsterInstance

    from datagen.worlds.catalog import demo_specs
    from orchestration.definitions import defs
    from orchestration.progress import progress_printer

    instance = DagsterInstance.get()
    ensure_gpu_pool(instance)
    summary: dict = {"materialized": {}, "failed": [], "failed_runs": []}
    world_ids = register_worlds(instance, demo_specs())
    data_job = defs.resolve_job_def("synthetic_data")
    clips_config = {"ops": {"synthetic_clips": {"config": DEMO_CLIPS}}}
    for world_id in world_ids:
        if not args.force and _materialized(instance, "synthetic_shards", world_id):
            print(f"synthetic_data [{world_id}]: already materialized (--force to redo)")
            continue
        _run(
            instance,
            data_job,
            summary,
            progress_printer,
            partition_key=world_id,
            run_config=clips_config,
        )
    # real-video ingestion of a video rendered from a demo world (orchestration/cli_ingest.py)
    demo_ingest(
        instance,
        defs,
        lambda job, **kw: _run(instance, job, summary, progress_printer, **kw),
        args.force,
    )
    selection, trained = _demo_selection(instance, defs, args.force)
    summary["materialized"].update({key: _latest_uri(instance, key) for key in sorted(trained)})
    after = _downstream_of_generation(defs)
    run = lambda job, **kw: _run(instance, job, summary, progress_printer, **kw)  # noqa: E731
    # 1. training on benchmark clips (everything that does not need generated videos)
    _run_demo_assets(defs, run, selection - after)
    # 2. generated out-of-domain videos (LaLRM stage 2's data), one `generation_batches` partition
    if not summary["failed_runs"]:
        demo_generation(instance, run, defs, args.force)
    # 3. what trains or evaluates on them
    if not summary["failed_runs"]:
        _run_demo_assets(defs, run, selection & after)
    # 4. a three-level world from one image, with the checkpoints just published
    if not summary["failed_runs"]:
        demo_world(instance, run, defs, args.force)
    print()
    if summary["failed_runs"]:
        print(f"demo FAILED in: {', '.join(summary['failed']) or 'run setup'}", file=sys.stderr)
        for run_id in summary["failed_runs"]:
            print(f"  full logs: `make ui`, then Runs → {run_id}", file=sys.stderr)
        return 1
    print(f"demo finished in {time.monotonic() - started:.0f} s.\n")
    keys = [k.to_user_string() for k in defs.resolve_asset_graph().toposorted_asset_keys]
    print(format_table(summary_rows(instance, keys)))
    print()
    print(f"  {'artifact store':<48} {_store_description()}")
    print(f"  {'dagster home (sqlite runs)':<48} {os.environ['DAGSTER_HOME']}")
    print("  browse them with `make ui`")
    return 0


def cmd_add_worlds(args: argparse.Namespace) -> int:
    prepare_dagster_home()
    from dagster import DagsterInstance

    from datagen.worlds.catalog import sample_specs

    instance = DagsterInstance.get()
    specs = sample_specs(args.count, args.seed, args.family or None)
    for world_id in register_worlds(instance, specs):
        print(world_id)
    print(f"registered {len(specs)} worlds; materialize them with the `synthetic_data` job")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    prepare_dagster_home()
    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    url = f"http://{args.host}:{args.port}"
    print(f"Dagster UI: open {url}  (DAGSTER_HOME={os.environ['DAGSTER_HOME']}; Ctrl-C stops it)")
    command = [
        dagster,
        "dev",
        "-m",
        "orchestration.definitions",
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    return subprocess.call(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wonderforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="versions, CUDA devices, artifact store in use")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)
    demo = sub.add_parser("demo", help="run the demo end to end in-process (embedded default)")
    demo.add_argument("--force", action="store_true", help="redo partitions already materialized")
    demo.set_defaults(func=cmd_demo)
    add = sub.add_parser("add-worlds", help="register procedural worlds as `worlds` partitions")
    add.add_argument("--count", type=int, default=3)
    add.add_argument("--seed", type=int, default=0)
    add.add_argument("--family", action="append", help="indoor, outdoor, tabletop (repeatable)")
    add.set_defaults(func=cmd_add_worlds)
    ui = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on loopback")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    add_ingest_commands(sub)
    add_worldgen_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
