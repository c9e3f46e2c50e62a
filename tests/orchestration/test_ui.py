"""`wonderforge ui` serves the Dagster UI on loopback and it lists the platform's assets."""

import pytest

from tests.fixtures.ui_server import graphql


@pytest.mark.slow
def test_ui_lists_assets(ui_server, tmp_path):
    data = graphql(ui_server, "{ assetNodes { assetKey { path } groupName } }")
    groups = {n["assetKey"]["path"][-1]: n["groupName"] for n in data["data"]["assetNodes"]}
    assert groups["platform_report"] == "platform"
    assert groups["generated_worlds"] == "inference" and groups["lalrm_stage2"] == "training"
    output = (tmp_path / "ui.log").read_text(errors="replace")
    assert f"http://127.0.0.1:{ui_server}" in output
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").is_file()
