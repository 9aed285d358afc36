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
from test_leaderboard_rank import SPEC  # the same runs: references, knn grid, bootstrap

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
NARROW = 700  # a window narrower than the plots' natural width


# Per plot: its natural size, its box (x, y, width, height; document coordinates), its
# object-fit, the viewport's width, and the boxes of ancestors whose overflow is not visible.
FIGURE_BOXES = """
function box(e) {
  var r = e.getBoundingClientRect();
  return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height];
}
return Array.from(document.images).map(function (img) {
  var croppers = [];
  for (var a = img.parentElement; a; a = a.parentElement) {
    var s = getComputedStyle(a);
    if (s.overflowX !== "visible" || s.overflowY !== "visible") { croppers.push(box(a)); }
  }
  return {natural: [img.naturalWidth, img.naturalHeight], box: box(img),
          fit: getComputedStyle(img).objectFit, viewport: document.documentElement.clientWidth,
          croppers: croppers};
});
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


def _column(browser: Any, index: int, table: str = "board") -> list[str]:
    return browser.execute_script(
        f"return Array.from(document.querySelectorAll('#{table} tbody tr'))"
        ".map(r => r.cells[arguments[0]].getAttribute('data-v'));",
        index,
    )


def _routers(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["kind"] == "router"]


def _header(browser: Any, name: str, table: str = "board") -> tuple[int, Any]:
    from selenium.webdriver.common.by import By

    heads = browser.find_elements(By.CSS_SELECTOR, f"#{table} thead th")
    names = [h.text.strip() for h in heads]
    return names.index(name), heads[names.index(name)]


class TestPage:
    def test_table_has_the_expected_rows(self, browser: Any, page) -> None:
        """One row per router of the leaderboard, in rank order, all shown."""
        path, table = page
        _open(browser, path)
        i, _ = _header(browser, "router")
        routers = _routers(table)
        assert _column(browser, i) == routers["router"].tolist()
        shown = browser.execute_script("return document.getElementById('shown').textContent;")
        assert shown == f"{len(routers)} of {len(routers)} routers"

    def test_references_are_apart(self, browser: Any, page) -> None:
        """The references are in their own labelled table, without rank or band, the frontier
        first in each scope as the ceiling; the routers' table holds no reference."""
        path, table = page
        _open(browser, path)
        refs = table[table["kind"] == "reference"]
        i, _ = _header(browser, "router", "references")
        assert _column(browser, i, "references") == refs["router"].tolist()
        heads = browser.execute_script(
            "return Array.from(document.querySelectorAll('#references thead th'))"
            ".map(h => h.textContent.trim());"
        )
        assert "rank" not in heads and "band" not in heads
        roles = _column(browser, _header(browser, "reference", "references")[0], "references")
        scopes = _column(browser, 0, "references")
        firsts = [roles[k] for k in range(len(roles)) if k == 0 or scopes[k] != scopes[k - 1]]
        assert len(firsts) == 3 and all(r.startswith("ceiling") for r in firsts)
        i, _ = _header(browser, "router")
        assert not set(_column(browser, i)) & set(refs["router"])
        title = browser.execute_script(
            "return document.getElementById('references').closest('section')"
            ".querySelector('h2').textContent;"
        )
        assert title == "References (not ranked)"

    def test_rank_bands_shown(self, browser: Any, page) -> None:
        """The routers' table shows each router's band, as in the leaderboard; more than one."""
        path, table = page
        _open(browser, path)
        i, th = _header(browser, "band")
        bands = [int(float(v)) for v in _column(browser, i)]
        assert bands == _routers(table)["band"].tolist() and max(bands) > 1
        assert "band" in th.get_attribute("title")

    @pytest.mark.parametrize("width", [1400, NARROW])
    def test_figures_not_clipped(self, browser: Any, page, width: int) -> None:
        """Each plot shows whole at its natural aspect ratio (its box is not smaller than its
        natural size scaled by the CSS), inside the window's width, under no cropping ancestor."""
        path, _ = page
        browser.set_window_size(width, 1000)
        try:
            _open(browser, path)
            boxes = browser.execute_script(FIGURE_BOXES)
        finally:
            browser.set_window_size(1400, 1000)
        assert len(boxes) == 2
        for b in boxes:
            assert b["natural"][0] > 0 and b["fit"] in ("fill", "contain")
            scale = b["box"][2] / b["natural"][0]
            assert b["box"][3] >= b["natural"][1] * scale - 1  # nothing cut off below
            assert abs(b["box"][3] - b["natural"][1] * scale) <= 1  # the natural aspect ratio
            assert b["box"][0] >= 0 and b["box"][0] + b["box"][2] <= b["viewport"] + 0.5
            for a in b["croppers"]:  # overflow other than visible: the image lies inside
                assert a[0] <= b["box"][0] and a[1] <= b["box"][1]
                assert a[0] + a[2] >= b["box"][0] + b["box"][2] - 0.5
                assert a[1] + a[3] >= b["box"][1] + b["box"][3] - 0.5
        if width == NARROW:  # scaled down proportionally, not cropped
            assert all(b["box"][2] < b["natural"][0] for b in boxes)

    def test_sorting_by_a_column(self, browser: Any, page) -> None:
        """Clicking AIQ sorts ascending, clicking again descending (numerically)."""
        path, table = page
        _open(browser, path)
        i, th = _header(browser, "AIQ")
        th.find_element("css selector", "button").click()
        aiq = _routers(table)["aiq"].tolist()
        asc = [float(v) for v in _column(browser, i)]
        assert asc == sorted(aiq)
        assert th.get_attribute("aria-sort") == "ascending"
        th.find_element("css selector", "button").click()
        desc = [float(v) for v in _column(browser, i)]
        assert desc == sorted(aiq, reverse=True)
        assert th.get_attribute("aria-sort") == "descending"

    def test_sorting_puts_empty_cells_last(self, browser: Any, page) -> None:
        """Rows with no cost to match the best single model sort last both ways."""
        path, table = page
        _open(browser, path)
        i, th = _header(browser, "cost to match best single ($/query)")
        missing = int(_routers(table)["cost_to_match_best_single"].isna().sum())
        assert 0 < missing < len(_routers(table))
        for _ in range(2):
            th.find_element("css selector", "button").click()
            values = _column(browser, i)
            assert values[-missing:] == [""] * missing and "" not in values[:-missing]

    def test_scope_filter(self, browser: Any, page) -> None:
        """Choosing a family shows only its rows, in both tables."""
        from selenium.webdriver.support.ui import Select

        path, table = page
        _open(browser, path)
        Select(browser.find_element("id", "scope")).select_by_value("mmlu")
        hidden = browser.execute_script(
            "return Array.from(document.querySelectorAll('#board tbody tr, #references tbody tr'))"
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
