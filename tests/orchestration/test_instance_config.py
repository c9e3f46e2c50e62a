"""Instance configs: dagster.yaml enables run retries (worker crashes only); the Postgres variant
validates against Dagster's instance schema, matches dagster.yaml outside `storage`, and is what
`WONDERFORGE_DAGSTER_YAML` installs into the Dagster home."""

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from orchestration.home import REPO_ROOT, prepare_dagster_home


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("WONDERFORGE_DAGSTER_YAML", raising=False)
    return tmp_path / "home"


def test_run_retries_cover_crashed_runs_only(home):
    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home()))
    try:
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure is False
    finally:
        instance.dispose()


def test_postgres_variant_validates_and_matches_the_default(home, monkeypatch):
    monkeypatch.setenv("WONDERFORGE_DAGSTER_YAML", "dagster.postgres.yaml")
    dagster_home = prepare_dagster_home()
    installed = (dagster_home / "dagster.yaml").read_text()
    assert installed == (REPO_ROOT / "dagster.postgres.yaml").read_text()
    config, _ = dagster_instance_config(str(dagster_home))  # raises on schema errors
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["hostname"] == {"env": "DAGSTER_PG_HOST"} and db["password"] == {
        "env": "DAGSTER_PG_PASSWORD"
    }
    default = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    postgres = yaml.safe_load(installed)
    assert "sqlite" in default.pop("storage") and "postgres" in postgres.pop("storage")
    postgres.pop("compute_logs")  # the default's implicit local compute logs, spelled out
    assert postgres == default


def test_unknown_instance_config_is_named(home, monkeypatch):
    monkeypatch.setenv("WONDERFORGE_DAGSTER_YAML", "dagster.nowhere.yaml")
    with pytest.raises(
        FileNotFoundError, match=r"WONDERFORGE_DAGSTER_YAML='dagster\.nowhere\.yaml'"
    ):
        prepare_dagster_home()
