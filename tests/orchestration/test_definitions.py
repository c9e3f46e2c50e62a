"""The Definitions load and validate; the demo job runs in-process into a temporary home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from orchestration.cli import main as cli_main
from orchestration.home import prepare_dagster_home


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path / "home"


def test_definitions_load_and_validate():
    from orchestration.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("demo").name == "demo"
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "platform_report" in keys


def test_dagster_home_is_sqlite_with_gpu_pool(home):
    dagster_home = prepare_dagster_home()
    assert dagster_home == (home / "dagster").resolve()
    assert (dagster_home / "dagster.yaml").read_text() == Path("dagster.yaml").read_text()
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        assert type(instance.run_storage).__name__.startswith("Sqlite")
        assert instance.run_storage.__class__.__module__.startswith("dagster._core.storage")
        assert instance.telemetry_enabled is False
        assert instance.global_op_concurrency_default_limit == 1
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
    finally:
        instance.dispose()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the whole DAG, twice; ~5 min per run on a loaded 2-core machine
def test_demo_job_writes_platform_report(home, capsys):
    assert cli_main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "platform_report" in out and "demo finished" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["synthetic_shards"][1] == "3"  # summary table: 3 world partitions
    for asset in ("lalrm_eval", "frame_model_eval", "generated_worlds", "generated_shards"):
        assert asset in rows, asset  # the whole DAG ran
    assert "WONDERFORGE_QUIET_RUNS" not in os.environ  # the demo restores the environment
    latest = home / "store" / "reports" / "platform" / "latest.json"
    report = json.loads(latest.read_text())
    assert report["packages"]["torch"].startswith("2.")
    assert report["accelerators"]["cuda_available"] in (True, False)
    assert report["artifact_store"].startswith("file://")
    dated = sorted((home / "store" / "reports" / "platform").glob("2*.json"))
    assert len(dated) == 1 and json.loads(dated[0].read_text()) == report
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        event = instance.get_latest_materialization_event(dg.AssetKey("platform_report"))
        assert event is not None
        assert event.asset_materialization.metadata["python"].value == report["python"]
    finally:
        instance.dispose()
    for model in ("image_vae", "video_vae", "camera_video_model"):
        latest = json.loads((home / "store" / "checkpoints" / model / "latest.json").read_text())
        assert rows[model][-1] == latest["uri"]  # the summary table links the published version
    assert cli_main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "already materialized" in out and "video_vae: already trained" in out


def test_cli_info_json(home):
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "info", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(result.stdout)
    assert info["project_home"] == str(home.resolve())
    assert info["artifact_store"] == (home / "store").resolve().as_uri()
    assert info["packages"]["dagster"] == dg.__version__


def test_cli_info_human(home, capsys):
    assert cli_main(["info"]) == 0
    out = capsys.readouterr().out
    assert "artifact store" in out and "torch" in out


def test_cli_rejects_unknown_command():
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["frobnicate"])
    assert exit_info.value.code == 2
