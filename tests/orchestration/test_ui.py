"""`wonderforge ui` serves the Dagster UI on loopback and it lists the platform's assets."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_ui_lists_assets(tmp_path):
    port = _free_port()
    env = dict(os.environ, WONDERFORGE_HOME=str(tmp_path / "home"))
    env.pop("DAGSTER_HOME", None)
    log = open(tmp_path / "ui.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "ui", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        names: list = []
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                data = _graphql(port, "{ assetNodes { assetKey { path } groupName } }")
                names = [n["assetKey"]["path"][-1] for n in data["data"]["assetNodes"]]
                if names:
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(1)
        output = (tmp_path / "ui.log").read_text(errors="replace")
        assert "platform_report" in names, output[-3000:]
        assert f"http://127.0.0.1:{port}" in output
        assert (tmp_path / "home" / "dagster" / "dagster.yaml").is_file()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
