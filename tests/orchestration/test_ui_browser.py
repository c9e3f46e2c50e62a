"""End-to-end UI test: `wonderforge ui` on 127.0.0.1 with a fresh home, driven by headless
Debian Chromium through Selenium: open the asset graph, open the `platform` group's graph, select
`platform_report`, launch its materialization from the UI, wait for the run to succeed and its
metadata to show up, then save a screenshot (pytest tmp dir, copied to tests/artifacts/).

Skipped (not failed) when Chromium, chromedriver or Selenium are missing. Selenium is given the
chromedriver path, so it never tries to download a driver (`SE_OFFLINE` as well)."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.fixtures.ui_server import graphql

CHROMIUM = os.environ.get("WONDERFORGE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WONDERFORGE_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
LOCATION = "orchestration.definitions"


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing())),
]


def _runs(port: int) -> list[dict]:
    data = graphql(port, "{ runsOrError { ... on Runs { results { runId status } } } }")
    return data["data"]["runsOrError"]["results"]


@pytest.fixture
def browser(monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download anything
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _body(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _wait_text(driver, texts: list[str], timeout: float = 30) -> str:
    """Wait until the page shows every one of `texts`; returns the page text."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.5).until(
        lambda d: all(t in _body(d) for t in texts),
        message=f"page never showed {texts}",
    )
    return _body(driver)


def test_materialize_platform_report_from_the_asset_graph(ui_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    port = ui_server
    base = f"http://127.0.0.1:{port}"
    assert _runs(port) == []

    # the global asset graph shows the platform's groups
    browser.get(f"{base}/asset-groups")
    _wait_text(browser, ["Global asset lineage", "platform", "training", "data"])

    # the platform group's graph: select the node, materialize the selection
    browser.get(f"{base}/locations/{LOCATION}/asset-groups/platform")
    node = WebDriverWait(browser, 30).until(
        ec.element_to_be_clickable((By.XPATH, "//*[@data-tooltip='platform_report']"))
    )
    node.click()
    button = WebDriverWait(browser, 30).until(
        ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Materialize selected']"))
    )
    button.click()

    # the run succeeds (GraphQL) and the page shows its materialization with the metadata
    deadline = time.monotonic() + 120
    while True:
        runs = _runs(port)
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        assert time.monotonic() < deadline, f"run did not finish: {runs}"
        time.sleep(1)
    (run,) = runs
    assert run["status"] == "SUCCESS"
    page = _wait_text(browser, ["Latest materialization", run["runId"][:8], "cuda_available"], 60)
    assert "platform_report" in page and "artifact_store" in page
    assert "reports/platform/" in page  # the report's URI in the metadata

    screenshot = tmp_path / "platform_report_materialized.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, ARTIFACTS / screenshot.name)
    store = tmp_path / "home" / "store" / "reports" / "platform" / "latest.json"
    assert json.loads(store.read_text())["artifact_store"].startswith("file://")
