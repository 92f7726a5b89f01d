"""``mlpkit report``: one self-contained HTML page, checked as text and in a real browser (Debian's chromium,
driven by Selenium), once as it loads and once with every network request blocked."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app

from ..conftest import CONFIGS

runner = CliRunner()
FIGURES = Path(__file__).resolve().parents[2] / "docs" / "figures"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    for name, lr in (("slow-lr", "0.02"), ("fast-lr", "0.1")):
        r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "4", "--lr", lr, "--out",
                                str(root / name), "-q"])
        assert r.exit_code == 0, r.output
    out = root / "report.html"
    r = runner.invoke(app, ["report", str(root / "slow-lr"), str(root / "fast-lr"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"report written to {out} (")
    return out


def test_the_report_is_one_self_contained_file(report):
    text = report.read_text()
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    assert "<script" not in text and "<link" not in text and "@import" not in text  # nothing to load
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)  # no request to anywhere
    assert text.count('class="chart') == 5  # learning curves, gradient norms, dropout, two confusion matrices
    assert text.count("<img src=\"data:image/png;base64,") == 24  # twelve mistakes per run
    for expected in ("slow-lr", "fast-lr", "Learning curves", "Gradient norms", "Dropout: training versus inference", "Confusion matrix",
                     "Most confidently wrong test images", "true ", "said ", "test accuracy", "wall time"):
        assert expected in text, expected
    assert 'name=viewport content="width=device-width' in text


def test_a_bad_output_name_is_one_line(tmp_path, report):
    run = report.parent / "fast-lr"
    r = runner.invoke(app, ["report", str(run), "-o", str(tmp_path / "r.txt")])
    assert r.exit_code == 2 and r.output.strip() == f"error: -o {tmp_path / 'r.txt'}: give an .html file in an " \
                                                    "existing folder."
    r = runner.invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and "is not an mlpkit run folder" in r.output


# --------------------------------------------------------------------------- a real browser


def _browser():
    """Headless Chromium from the OS packages, or a skip naming what is missing (.ci/run installs them and
    sets MLPKIT_REQUIRE_BROWSER, which makes a missing browser a failure)."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("selenium")
    if missing:
        why = f"the browser tests need {', '.join(missing)} (Debian: apt install chromium chromium-driver)"
        if os.environ.get("MLPKIT_REQUIRE_BROWSER"):
            pytest.fail(why)
        pytest.skip(why)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


RENDERED = """
const charts = [...document.querySelectorAll('svg.chart')].map(s => {
  const r = s.getBoundingClientRect(); return [r.width, r.height]; });
const images = [...document.querySelectorAll('.gallery img')].map(i => [i.complete, i.naturalWidth]);
return {charts, images, overflow: document.documentElement.scrollWidth - window.innerWidth,
        resources: performance.getEntriesByType('resource').map(e => e.name)};
"""


def _check_rendered(driver, url: str) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    # wait on the event (the document parsed and laid out), not on the clock; the bound only ends a hang
    WebDriverWait(driver, 120).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && document.querySelectorAll('svg.chart').length === 5"))
    state = driver.execute_script(RENDERED)
    assert len(state["charts"]) == 5 and all(w > 100 and h > 50 for w, h in state["charts"]), state["charts"]
    assert len(state["images"]) == 24 and all(done and width > 0 for done, width in state["images"])
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    return state


def test_the_report_renders_in_a_browser_without_errors_and_at_phone_width(report):
    driver = _browser()
    try:
        state = _check_rendered(driver, report.as_uri())
        assert state["resources"] == []  # not one request beyond the page itself
        shot = report.parent / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if os.environ.get("MLPKIT_SAVE_FIGURES"):  # scripts: refresh docs/figures/report.png
            shutil.copy(shot, FIGURES / "report.png")
        driver.set_window_size(390, 844)  # a phone
        state = _check_rendered(driver, report.as_uri())
        assert state["overflow"] <= 0, state["overflow"]  # nothing wider than the screen
    finally:
        driver.quit()


def test_the_report_renders_completely_with_the_network_blocked(report):
    driver = _browser()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*",
                                                                   "*://*/*"]})
        state = _check_rendered(driver, report.as_uri())
        assert state["resources"] == []
    finally:
        driver.quit()
