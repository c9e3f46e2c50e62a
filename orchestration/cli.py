"""`wonderforge` command line: info, demo, ui."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

from orchestration.cli_ingest import add_ingest_commands, demo_ingest
from orchestration.home import GPU_POOL, prepare_dagster_home, project_home

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
}
DEMO_LAUNCHER = {"config": {"cpu_threads": 1, "report_every_s": 10.0}}


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


def cmd_demo(args: argparse.Namespace) -> int:
    prepare_dagster_home()
    from dagster import AssetKey, DagsterInstance

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
    ops = {key: {"config": DEMO_TRAINING[key]} for key in selection if key in DEMO_TRAINING}
    _run(
        instance,
        defs.resolve_job_def("demo"),
        summary,
        progress_printer,
        asset_selection=[AssetKey(key) for key in sorted(selection)],
        run_config={"ops": ops, "resources": {"launcher": DEMO_LAUNCHER}},
    )
    print()
    if summary["failed_runs"]:
        print(f"demo FAILED in: {', '.join(summary['failed']) or 'run setup'}", file=sys.stderr)
        for run_id in summary["failed_runs"]:
            print(f"  full logs: `make ui`, then Runs → {run_id}", file=sys.stderr)
        return 1
    print("demo finished. Outputs:")
    for key, uri in summary["materialized"].items():
        print(f"  {key:<48} {uri or ''}")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
