"""`wonderforge` command line: info, demo, ui."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

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


def cmd_demo(args: argparse.Namespace) -> int:
    prepare_dagster_home()
    import uuid

    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.progress import progress_printer

    instance = DagsterInstance.get()
    ensure_gpu_pool(instance)
    job = defs.resolve_job_def("demo")
    run_id = str(uuid.uuid4())
    on_event, summary = progress_printer()
    instance.add_event_listener(run_id, on_event)
    print(f"wonderforge demo: run {run_id}")
    result = job.execute_in_process(
        instance=instance, run_id=run_id, raise_on_error=False, run_config=QUIET_LOGS
    )
    print()
    if not result.success:
        print(f"demo FAILED in: {', '.join(summary['failed']) or 'run setup'}", file=sys.stderr)
        print(f"  full logs: `make ui`, then Runs → {run_id}", file=sys.stderr)
        return 1
    print("demo finished. Outputs:")
    for key, uri in summary["materialized"].items():
        print(f"  {key:<28} {uri or ''}")
    print(f"  artifact store               {_store_description()}")
    print(f"  dagster home (sqlite runs)   {os.environ['DAGSTER_HOME']}")
    print("  browse them with `make ui`")
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
    demo = sub.add_parser("demo", help="run the demo job in-process on the embedded default")
    demo.set_defaults(func=cmd_demo)
    ui = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on loopback")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
