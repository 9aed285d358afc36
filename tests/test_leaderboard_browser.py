"""The leaderboard page in a real headless browser (Debian's chromium, driven by Selenium).

Skipped only when chromium and its driver are not installed here (CI installs them:
``apt-get install -y chromium chromium-driver``); Selenium itself must then be installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from s3server import time_limit

from routerbench.cluster import leaderboard as lb
from routerbench.cluster.cli import main

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="chromium and chromedriver are not installed "
    "(apt-get install -y chromium chromium-driver)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]
SPEC = """
[data]
synthetic_n = 2000
families = ["mmlu", "hellaswag"]
[metrics]
bootstrap = 20
[[routers]]
name = "single"
[[routers]]
name = "oracle"
[[routers]]
name = "knn"
grid = { k = [5, 10] }
"""


@pytest.fixture(autouse=True)
def _limit() -> Iterator[None]:
    with time_limit(120):
        yield


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A published leaderboard page and its table."""
    root = tmp_path_factory.mktemp("browser")
    (root / "spec.toml").write_text(SPEC)
    runs = str(root / "runs")
    argv = ["run", str(root / "spec.toml"), "--out", runs, "--run-id", "r", "--quiet"]
    assert main([*argv, "--no-plots"]) == 0
    folder = Path(lb.refresh(runs, str(root / "lb")))
    return folder / "index.html", pd.read_parquet(folder / "leaderboard.parquet")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless chromium with a fresh profile, its console log kept; quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with time_limit(60):
        driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser: Any, path: Path) -> None:
    browser.get_log("browser")  # only this page's messages count: drop earlier ones
    browser.get(path.as_uri())


def _column(browser: Any, index: int) -> list[str]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#board tbody tr'))"
        ".map(r => r.cells[arguments[0]].getAttribute('data-v'));",
        index,
    )


def _header(browser: Any, name: str) -> tuple[int, Any]:
    from selenium.webdriver.common.by import By

    heads = browser.find_elements(By.CSS_SELECTOR, "#board thead th")
    names = [h.text.strip() for h in heads]
    return names.index(name), heads[names.index(name)]


class TestPage:
    def test_table_has_the_expected_rows(self, browser: Any, page) -> None:
        """One row per leaderboard row, routers in rank order, all shown."""
        path, table = page
        _open(browser, path)
        i, _ = _header(browser, "router")
        assert _column(browser, i) == table["router"].tolist()
        shown = browser.execute_script("return document.getElementById('shown').textContent;")
        assert shown == f"{len(table)} of {len(table)} rows"

    def test_sorting_by_a_column(self, browser: Any, page) -> None:
        """Clicking AIQ sorts ascending, clicking again descending (numerically)."""
        path, table = page
        _open(browser, path)
        i, th = _header(browser, "AIQ")
        th.find_element("css selector", "button").click()
        asc = [float(v) for v in _column(browser, i)]
        assert asc == sorted(table["aiq"].tolist())
        assert th.get_attribute("aria-sort") == "ascending"
        th.find_element("css selector", "button").click()
        desc = [float(v) for v in _column(browser, i)]
        assert desc == sorted(table["aiq"].tolist(), reverse=True)
        assert th.get_attribute("aria-sort") == "descending"

    def test_sorting_puts_empty_cells_last(self, browser: Any, page) -> None:
        """Rows with no cost to match the best single model sort last both ways."""
        path, table = page
        _open(browser, path)
        i, th = _header(browser, "cost to match best single ($/query)")
        missing = int(table["cost_to_match_best_single"].isna().sum())
        assert 0 < missing < len(table)
        for _ in range(2):
            th.find_element("css selector", "button").click()
            values = _column(browser, i)
            assert values[-missing:] == [""] * missing and "" not in values[:-missing]

    def test_scope_filter(self, browser: Any, page) -> None:
        """Choosing a family shows only its rows."""
        from selenium.webdriver.support.ui import Select

        path, table = page
        _open(browser, path)
        Select(browser.find_element("id", "scope")).select_by_value("mmlu")
        hidden = browser.execute_script(
            "return Array.from(document.querySelectorAll('#board tbody tr'))"
            ".map(r => [r.dataset.scope, r.hidden]);"
        )
        assert all(h == (scope != "mmlu") for scope, h in hidden)
        assert sum(not h for _, h in hidden) == int((table["scope"] == "mmlu").sum())

    def test_plots_load(self, browser: Any, page) -> None:
        """Every plot is decoded (naturalWidth > 0): one per family."""
        path, _ = page
        _open(browser, path)
        sizes = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth]);"
        )
        assert len(sizes) == 2
        assert all(done and width > 0 for done, width in sizes)

    def test_nothing_from_the_network(self, browser: Any, page) -> None:
        """Every resource the page loaded is a data: URI."""
        path, _ = page
        _open(browser, path)
        names = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name);"
        )
        assert all(n.startswith("data:") for n in names)

    def test_console_has_no_errors(self, browser: Any, page) -> None:
        """Loading, sorting and filtering log nothing at warning level or above."""
        from selenium.webdriver.support.ui import Select

        path, _ = page
        _open(browser, path)
        _header(browser, "rank")[1].find_element("css selector", "button").click()
        Select(browser.find_element("id", "scope")).select_by_value("overall")
        logs = browser.get_log("browser")
        assert [e for e in logs if e["level"] in ("SEVERE", "WARNING")] == []

    def test_console_check_sees_errors(self, browser: Any, tmp_path: Path) -> None:
        """The console check is not blind: a page with a script error is caught."""
        bad = tmp_path / "bad.html"
        bad.write_text("<!DOCTYPE html><title>x</title><script>undefinedCall();</script>")
        _open(browser, bad)
        assert any(e["level"] == "SEVERE" for e in browser.get_log("browser"))
