"""The leaderboard: ranking, files, atomic publishing, the nightly job and its CLI verbs."""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from s3server import S3Server, time_limit

from routerbench.cluster.cli import main
from routerbench.cluster.leaderboard import publish as lb
from routerbench.cluster.leaderboard.nightly import nightly
from routerbench.cluster.leaderboard.rank import (
    COLUMNS,
    collect,
    completed_runs,
    cost_to_reach,
    rank,
)
from routerbench.engine import storage as store
from routerbench.engine.errors import DataError, RunFailed
from routerbench.sweeps.labels import ONE_POINT_NOTE

HEAD = """
[data]
synthetic_n = 2000
families = ["mmlu", "hellaswag"]
[metrics]
bootstrap = 20
"""
# Two specs on the same data: both have the single models (deduplicated on the board).
SPEC_A = HEAD + '[[routers]]\nname = "single"\n[[routers]]\nname = "oracle"\n'
SPEC_A += '[[routers]]\nname = "knn"\ngrid = { k = [5, 10] }\n'
SPEC_B = HEAD + '[[routers]]\nname = "single"\n[[routers]]\nname = "random"\n'
FILES = [*lb.FILES, "index.html"]


@pytest.fixture(autouse=True)
def _limit() -> Iterator[None]:
    with time_limit(240):
        yield


def _specs(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.toml").write_text(SPEC_A)
    (folder / "b.toml").write_text(SPEC_B)
    return [str(folder / "a.toml"), str(folder / "b.toml")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two completed runs (spec A, then B) and one incomplete run folder."""
    root = tmp_path_factory.mktemp("lb")
    url = str(root / "runs")
    for i, spec in enumerate(_specs(root / "specs")):
        argv = ["run", spec, "--out", url, "--run-id", f"run{i}", "--quiet", "--no-plots"]
        assert main(argv) == 0
    store.write_bytes(store.join(url, "partial", "cells", "x.npz"), b"")  # no manifest
    return url


@pytest.fixture(scope="module")
def table(runs: str) -> pd.DataFrame:
    return rank(collect(runs).curves)


@pytest.fixture(scope="module")
def published(runs: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A leaderboard published from the runs: (out URL, version URL)."""
    out = str(tmp_path_factory.mktemp("published") / "lb")
    return out, lb.refresh(runs, out)


def _generated(version_url: str, so: dict | None = None) -> str:
    doc = json.loads(store.read_bytes(store.join(version_url, "leaderboard.json"), so))
    return str(doc["generated"])


def _normalised(version_url: str, so: dict | None = None) -> dict[str, bytes]:
    """A version's files with its generation time replaced by a placeholder."""
    t = _generated(version_url, so).encode()
    return {
        f: store.read_bytes(store.join(version_url, f), so).replace(t, b"<generated>")
        for f in FILES
    }


# ---------------------------------------------------------------------------------- ranking
class TestCostToReach:
    def test_examples(self) -> None:
        """At a vertex, between vertices, never, and with no target."""
        c, q = np.array([1.0, 2.0, 4.0]), np.array([0.5, 0.7, 0.8])
        assert cost_to_reach(c, q, 0.4) == 1.0
        assert cost_to_reach(c, q, 0.7) == 2.0
        assert cost_to_reach(c, q, 0.75) == pytest.approx(3.0)
        assert math.isnan(cost_to_reach(c, q, 0.81))
        assert math.isnan(cost_to_reach(c, q, math.nan))

    @given(
        st.lists(st.floats(0.001, 10), min_size=1, max_size=8, unique=True),
        st.lists(st.floats(0, 1), min_size=8, max_size=8),
        st.floats(0, 1),
    )
    def test_least_cost_on_the_hull(self, costs: list[float], qs: list[float], t: float) -> None:
        """The hull reaches the target at the returned cost and at no smaller cost."""
        c = np.sort(np.array(costs))
        q = np.sort(np.array(qs[: len(c)]))
        got = cost_to_reach(c, q, t)
        if q[-1] < t:
            assert math.isnan(got)
            return
        assert np.interp(got, c, q) >= t - 1e-9
        if got > c[0]:
            assert np.interp(got - 1e-9 * (1 + got), c, q) < t + 1e-9


class TestCollect:
    def test_only_completed_runs(self, runs: str) -> None:
        """Run folders without a manifest are left out."""
        assert completed_runs(runs) == ["run0", "run1"]
        assert [m["run_id"] for m in collect(runs).runs] == ["run0", "run1"]

    def test_newest_result_per_configuration(self, runs: str) -> None:
        """Single models are in both runs: each appears once per family, from the newer run."""
        cv = collect(runs).curves
        singles = cv[cv["router"] == "single"]
        assert not singles.duplicated(["family", "params"]).any()
        assert set(singles["run_id"]) == {"run1"}
        assert len(singles) == 2 * 11

    def test_include_filters(self, runs: str) -> None:
        """include= keeps only the named runs."""
        cv = collect(runs, include=["run0"]).curves
        assert set(cv["run_id"]) == {"run0"} and "random" not in set(cv["router"])

    def test_no_runs_is_a_one_line_error(self, tmp_path: Path) -> None:
        """An empty runs folder raises a DataError naming it."""
        with pytest.raises(DataError, match="no completed runs") as e:
            collect(str(tmp_path))
        assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)

    def test_included_run_must_be_complete(self, runs: str) -> None:
        """Naming an incomplete run in include= raises a DataError naming it."""
        with pytest.raises(DataError, match="'partial' is not complete"):
            collect(runs, include=["run0", "partial"])


class TestRank:
    def test_families_ranked_by_aiq(self, table: pd.DataFrame) -> None:
        """Within each scope, the routers' ranks are 1..n in order of decreasing AIQ; the
        references (single models, oracle, zero, frontier) have none."""
        for _, g in table.groupby(["data_fingerprint", "split", "scope"]):
            routers = g[g["kind"] == "router"]
            assert set(routers["router_name"]) == {"knn", "random"}
            assert routers["rank"].tolist() == list(range(1, len(routers) + 1))
            assert (np.diff(routers["aiq"].to_numpy()) <= 0).all()
            assert g[g["kind"] == "reference"]["rank"].isna().all()

    def test_scopes(self, table: pd.DataFrame) -> None:
        """'overall' first, then each family; every configuration once per family."""
        assert list(dict.fromkeys(table["scope"])) == ["overall", "hellaswag", "mmlu"]
        fam = table[table["scope"] != "overall"]
        assert not fam.duplicated(["scope", "router_name", "params"]).any()
        assert len(fam) == 2 * (11 + 1 + 2 + 1 + 2)  # singles, oracle, knn, random, zero, frontier

    def test_overall_is_the_mean_over_families(self, table: pd.DataFrame) -> None:
        """Overall AIQ is the families' mean; its interval contains it."""
        fam = table[table["scope"] != "overall"]
        for _, r in table[table["scope"] == "overall"].iterrows():
            g = fam[(fam["router_name"] == r["router_name"]) & (fam["params"] == r["params"])]
            assert len(g) == 2 and r["families"] == 2
            assert r["aiq"] == pytest.approx(g["aiq"].mean())
            assert r["aiq_lo"] <= r["aiq"] <= r["aiq_hi"]

    def test_cost_to_match_best_single(self, table: pd.DataFrame) -> None:
        """The best single model matches itself at its own cost; routers whose hull stays below
        it have none; the others match it no dearer than at their own max quality."""
        fam = table[table["scope"] != "overall"]
        for _, g in fam.groupby("scope"):
            singles = g[g["router_name"] == "single"]
            best = singles.loc[singles["max_quality"].idxmax()]
            assert g["best_single"].eq(best["router"]).all()
            assert best["cost_to_match_best_single"] == best["cost_at_max_quality"]
            below = g[g["max_quality"] < best["max_quality"]]
            assert below["cost_to_match_best_single"].isna().all()
            above = g[g["max_quality"] >= best["max_quality"]]
            assert len(above) >= 2  # the best single model and the oracle at least
            assert (above["cost_to_match_best_single"] <= above["cost_at_max_quality"]).all()

    def test_schema(self, table: pd.DataFrame) -> None:
        """The table has exactly the documented columns, in order."""
        assert list(table.columns) == list(COLUMNS)


# ------------------------------------------------------------------------------- publishing
class TestRefresh:
    def test_files_agree(self, published: tuple[str, str], table: pd.DataFrame) -> None:
        """Parquet, CSV and JSON hold the same rows; LATEST names the version; the root page is
        the version's page; the Markdown has a section per scope."""
        out, folder = published
        assert lb.read_latest(out) == folder
        pq = pd.read_parquet(Path(folder) / "leaderboard.parquet")
        pd.testing.assert_frame_equal(pq, table)
        csv = pd.read_csv(Path(folder) / "leaderboard.csv")
        assert csv["router"].tolist() == pq["router"].tolist()
        np.testing.assert_allclose(csv["aiq"], pq["aiq"])
        doc = json.loads((Path(folder) / "leaderboard.json").read_text())
        assert [r["router"] for r in doc["rows"]] == pq["router"].tolist()
        assert [r["run_id"] for r in doc["runs"]] == ["run0", "run1"]
        assert set(doc["columns"]) == set(COLUMNS)
        md = (Path(folder) / "leaderboard.md").read_text()
        for scope in ("overall", "hellaswag", "mmlu"):
            assert f"### {scope}" in md
        root_page = (Path(out) / "index.html").read_bytes()
        assert root_page == (Path(folder) / "index.html").read_bytes()

    def test_published_tables_are_small(self, published: tuple[str, str]) -> None:
        """CSV and JSON hold exactly the documented columns: no replicate lists."""
        folder = Path(published[1])
        header = (folder / "leaderboard.csv").read_text().splitlines()[0]
        assert header.split(",") == list(COLUMNS)
        doc = json.loads((folder / "leaderboard.json").read_text())
        assert all(list(r) == list(COLUMNS) for r in doc["rows"])
        assert all(r["rank"] is None for r in doc["rows"] if r["kind"] == "reference")
        assert all(text.strip() for text in COLUMNS.values())

    def test_markdown_keeps_references_apart(self, published: tuple[str, str]) -> None:
        """Per scope: the ranked routers, then the references, the frontier first as the
        ceiling; single models appear only among the references; the one-point note once."""
        md = (Path(published[1]) / "leaderboard.md").read_text()
        assert md.count(ONE_POINT_NOTE) == 1
        sections = md.split("\n### ")[1:]
        assert len(sections) == 3
        for sec in sections:
            ranked, refs = (
                [ln for ln in part.splitlines() if ln.startswith("| ") and "---" not in ln]
                for part in sec.split("References, not ranked")
            )
            assert refs[1].startswith("| frontier (ceiling) |")
            assert len(refs) == 1 + 11 + 3 and all("single:" in r for r in refs[4:])
            assert [r.split(" | ")[2].split("(")[0] for r in ranked[1:]] == ["knn", "knn", "random"]

    def test_page_is_self_contained(self, runs: str, published: tuple[str, str]) -> None:
        """The page references nothing on the network; plots are data: URIs; provenance shown."""
        folder = published[1]
        page = (Path(folder) / "index.html").read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)
        assert page.count('src="data:image/png;base64,') == 2
        manifest = json.loads((Path(runs) / "run0" / "manifest.json").read_text())
        for value in (manifest["spec_hash"], manifest["data_fingerprint"], _generated(folder)):
            assert value in page
        assert html.escape(ONE_POINT_NOTE) in page

    def test_keep_prunes_old_versions(
        self, runs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With keep=1 (and no grace), a second refresh deletes the first version; LATEST names
        the second."""
        monkeypatch.setattr(lb, "PRUNE_GRACE", dt.timedelta(0))
        out = str(tmp_path / "lb")
        folders = [lb.refresh(runs, out, keep=1) for _ in range(2)]
        assert store.list_dir(store.join(out, "versions")) == [folders[1].rsplit("/", 1)[-1]]
        assert lb.read_latest(out) == folders[-1]

    def test_grace_spares_young_versions(self, runs: str, tmp_path: Path) -> None:
        """Versions younger than PRUNE_GRACE are kept: a refresh may be about to name them."""
        out = str(tmp_path / "lb")
        folders = [lb.refresh(runs, out, keep=1) for _ in range(2)]
        assert len(store.list_dir(store.join(out, "versions"))) == 2
        assert lb.read_latest(out) == folders[-1]

    def test_slow_refresh_never_names_a_pruned_version(
        self, runs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A slow refresh (A) and a fast one (B, keep=1) at once: B prunes A's older version
        while A is between writing it and writing LATEST; A then leaves LATEST alone, so LATEST
        always names a version that exists."""
        monkeypatch.setattr(lb, "PRUNE_GRACE", dt.timedelta(0))
        out = str(tmp_path / "lb")
        paused, resume = threading.Event(), threading.Event()
        original = lb._latest_id

        def latest_id(url: str, so: object) -> str:
            if threading.current_thread().name == "A" and not paused.is_set():
                paused.set()  # A has written its version folder
                assert resume.wait(60)
            return original(url, so)  # type: ignore[arg-type]

        monkeypatch.setattr(lb, "_latest_id", latest_id)
        a = threading.Thread(target=lb.refresh, args=(runs, out), kwargs={"keep": 1}, name="A")
        a.start()
        assert paused.wait(60)
        lb.refresh(runs, out, keep=1)  # B
        resume.set()
        a.join(60)
        latest = lb.read_latest(out)
        assert (Path(latest) / "leaderboard.parquet").exists()
        assert (Path(out) / "index.html").read_bytes() == (Path(latest) / "index.html").read_bytes()

    def test_nothing_published_on_error(self, tmp_path: Path) -> None:
        """No completed runs: a DataError, and nothing is written."""
        with pytest.raises(DataError):
            lb.refresh(str(tmp_path / "runs"), str(tmp_path / "lb"))
        assert not (tmp_path / "lb").exists()

    def test_concurrent_refreshes_local(self, runs: str, tmp_path: Path) -> None:
        """Two refreshes at once (two processes) while a reader reads: all consistent."""
        _concurrent(runs, str(tmp_path / "lb"), None)

    def test_concurrent_refreshes_s3(self, runs: str, s3: S3Server) -> None:
        """The same on the S3 server, where there is no atomic rename."""
        so = s3.options()
        runs_url = s3.bucket() + "/runs"
        for run in ("run0", "run1"):
            for f in ("manifest.json", "curves.parquet", "points.parquet"):
                data = store.read_bytes(store.join(runs, run, f))
                store.write_bytes(store.join(runs_url, run, f), data, so)
        _concurrent(runs_url, runs_url.replace("/runs", "/lb"), so)


def _check_version(version_url: str, so: dict | None) -> None:
    """Every file of a version is present and from the same refresh."""
    t = _generated(version_url, so)
    files = {f: store.read_bytes(store.join(version_url, f), so) for f in FILES}
    assert t.encode() in files["leaderboard.md"] and t.encode() in files["index.html"]
    rows = len(json.loads(files["leaderboard.json"])["rows"])
    assert (
        len(
            pd.read_parquet(
                BytesIO(store.read_bytes(store.join(version_url, "leaderboard.parquet"), so))
            )
        )
        == rows
    )
    assert files["index.html"].rstrip().endswith(b"</html>")


def _concurrent(runs_url: str, out_url: str, so: dict | None) -> None:
    code = (
        "import json, sys; from routerbench.cluster.leaderboard import refresh; "
        "print(refresh(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))"
    )
    lb.refresh(runs_url, out_url, so)  # a published version to start from
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, runs_url, out_url, json.dumps(so)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reads = 0
    deadline = time.monotonic() + 120
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            _check_version(lb.read_latest(out_url, so), so)
            reads += 1
            time.sleep(0.05)  # leave the CPU to the writers
    finally:
        outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and reads > 0
    assert lb.read_latest(out_url, so) in outs
    versions = store.list_dir(store.join(out_url, "versions"), so)
    assert len(versions) == 3
    for v in versions:
        _check_version(store.join(out_url, "versions", v), so)


# ----------------------------------------------------------------------------------- nightly
class TestNightly:
    def test_reruns_only_what_changed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """First night: both specs run. Unchanged inputs: nothing is evaluated, the runs are
        untouched, and the published files are byte-identical apart from the generation time.
        A changed spec: only that one runs again."""
        specs = _specs(tmp_path / "specs")
        first = nightly(specs, str(tmp_path / "store"), plots=False)
        assert len(first.ran) == 2 and first.skipped == []
        runs = tmp_path / "store" / "runs"
        before = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}

        import routerbench.sweeps.execute as execute

        def no_evaluation(*args: object, **kwargs: object) -> None:
            raise AssertionError("a cell was evaluated on unchanged inputs")

        with monkeypatch.context() as m:
            m.setattr(execute, "evaluate_cell", no_evaluation)
            second = nightly(specs, str(tmp_path / "store"), plots=False)
        assert second.ran == [] and second.skipped == first.ran
        assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()} == before
        assert second.published != first.published
        assert _normalised(second.published) == _normalised(first.published)
        assert _generated(second.published) != _generated(first.published)

        Path(specs[1]).write_text(SPEC_B + '[[routers]]\nname = "zero"\n')
        third = nightly(specs, str(tmp_path / "store"), plots=False)
        assert third.skipped == [first.ran[0]] and len(third.ran) == 1
        assert third.ran[0] != first.ran[1]
        table = pd.read_parquet(Path(third.published) / "leaderboard.parquet")
        assert "zero" in set(table["router"]) and set(table["run_id"]) >= set(third.ran)

    def test_failed_run_stops_the_night(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run with failed cells stops the job with RunFailed naming the spec, the run and the
        first error; no leaderboard is published."""
        from routerbench.routers import reference

        def broken(self: object, train: object) -> None:
            raise ValueError("broken on purpose")

        monkeypatch.setattr(reference.Oracle, "fit", broken)
        spec = _specs(tmp_path / "specs")[:1]  # spec A has the oracle
        with pytest.raises(RunFailed) as e:
            nightly(spec, str(tmp_path / "store"), plots=False)
        (run_id,) = os.listdir(tmp_path / "store" / "runs")
        assert str(e.value).startswith(f"{spec[0]}: run {run_id}: ")
        assert "broken on purpose" in str(e.value) and "not refreshed" in str(e.value)
        assert not (tmp_path / "store" / "leaderboard").exists()

    def test_on_s3_with_aws_environment(
        self, tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Endpoint and credentials from the standard AWS environment; a second night on
        unchanged inputs publishes the same leaderboard again."""
        import s3fs

        monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        s3fs.S3FileSystem.clear_instance_cache()  # instances made before these settings
        try:
            url = s3.bucket() + "/nightly"
            spec = _specs(tmp_path / "specs")[1:]
            first = nightly(spec, url, plots=False)
            second = nightly(spec, url, plots=False)
            assert second.ran == [] and second.skipped == first.ran
            assert _normalised(second.published) == _normalised(first.published)
            assert lb.read_latest(url + "/leaderboard") == second.published
        finally:
            s3fs.S3FileSystem.clear_instance_cache()


# --------------------------------------------------------------------------------------- CLI
class TestCli:
    def test_refresh(self, runs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """leaderboard refresh publishes and prints the runs read and skipped, the page's URL
        (the published one and the version's), and on its last line the version folder."""
        out = str(tmp_path / "lb")
        assert main(["leaderboard", "refresh", "--runs", runs, "--out", out]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        folder = lb.read_latest(out)
        assert lines == [
            "read 2 run(s), skipped 0",
            f"page: {(tmp_path / 'lb' / 'index.html').as_uri()} "
            f"(this version: {Path(folder, 'index.html').as_uri()})",
            folder,
        ]

    def test_refresh_names_skipped_runs(
        self, runs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A damaged run is counted as skipped, with why; the others are published."""
        copy = tmp_path / "runs"
        for run in ("run0", "run1"):
            shutil.copytree(Path(runs) / run, copy / run)
        curves = copy / "run1" / "curves.parquet"
        curves.write_bytes(curves.read_bytes()[:-20])
        argv = ["leaderboard", "refresh", "--runs", str(copy), "--out", str(tmp_path / "lb")]
        assert main(argv) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines[0] == "read 1 run(s), skipped 1:"
        assert lines[1].startswith("  skipped run1: ") and "curves.parquet" in lines[1]
        assert len(lines) == 4

    def test_bare_group_prints_help_to_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`routerbench leaderboard` alone: its help on stderr, nothing on stdout, exit 2."""
        assert main(["leaderboard"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("usage: routerbench leaderboard")

    def test_every_parser_and_argument_has_help(self) -> None:
        """The leaderboard group, its verbs and every argument have a description or help."""
        from routerbench.cluster.cli import build_parser

        def subparsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
            acts = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
            return [c for a in acts for c in a.choices.values()]

        group = next(c for c in subparsers(build_parser()) if c.prog.endswith(" leaderboard"))
        parsers = [group, *subparsers(group)]
        assert {p.prog.rsplit(" ", 1)[-1] for p in parsers} == {"leaderboard", "refresh", "nightly"}
        for p in parsers:
            assert p.description, p.prog
            for a in p._actions:
                assert a.help and a.help.strip(), (p.prog, a.dest)

    def test_refresh_on_s3_with_storage_options(
        self, runs: str, s3: S3Server, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--storage-option carries the endpoint and credentials."""
        so = s3.options()
        base = s3.bucket()
        for f in ("manifest.json", "curves.parquet", "points.parquet"):
            store.write_bytes(f"{base}/runs/r/{f}", (Path(runs) / "run0" / f).read_bytes(), so)
        opts = [f"--storage-option={k}={json.dumps(v)}" for k, v in so.items()]
        argv = ["leaderboard", "refresh", "--runs", f"{base}/runs", "--out", f"{base}/lb"]
        assert main([*argv, *opts]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        folder = lb.read_latest(f"{base}/lb", so)
        assert lines[-1] == folder and lines[0] == "read 1 run(s), skipped 0"
        assert lines[1] == f"page: {base}/lb/index.html (this version: {folder}/index.html)"

    def test_report_and_plot_on_s3_with_storage_options(
        self, runs: str, s3: S3Server, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """report and plot read a run on S3 (and plot writes there) with --storage-option; the
        report is the local one's."""
        so = s3.options()
        url = f"{s3.bucket()}/runs/r"
        for f in ("manifest.json", "curves.parquet", "points.parquet"):
            store.write_bytes(f"{url}/{f}", (Path(runs) / "run0" / f).read_bytes(), so)
        opts = [f"--storage-option={k}={json.dumps(v)}" for k, v in so.items()]
        assert main(["report", str(Path(runs) / "run0"), "--format", "json"]) == 0
        local = capsys.readouterr().out
        assert main(["report", url, "--format", "json", *opts]) == 0
        assert capsys.readouterr().out == local
        assert main(["plot", url, *opts]) == 0
        printed = capsys.readouterr().out.split()
        assert printed and all(u.startswith(f"{url}/plots/") for u in printed)
        assert all(store.read_bytes(u, so).startswith(b"\x89PNG") for u in printed)

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            (["--storage-option", "anon"], "--storage-option must be KEY=VALUE (got 'anon')"),
            (["--keep", "0"], "--keep must be >= 1 (got 0)"),
        ],
    )
    def test_bad_values_one_line(
        self,
        runs: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        extra: list[str],
        message: str,
    ) -> None:
        """Bad flags: exit code 2, one line naming the value, nothing published."""
        out = tmp_path / "lb"
        argv = ["leaderboard", "refresh", "--runs", runs, "--out", str(out), *extra]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.strip() == f"routerbench: error: {message}"
        assert not out.exists()

    def test_missing_bucket(
        self, runs: str, s3: S3Server, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Publishing into a bucket that does not exist: exit code 2, one line naming it."""
        opts = [f"--storage-option={k}={json.dumps(v)}" for k, v in s3.options().items()]
        out = "s3://no-such-bucket-here/lb"
        assert main(["leaderboard", "refresh", "--runs", runs, "--out", out, *opts]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and out in err[0] and "FileNotFoundError" in err[0]

    def test_no_runs(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """No completed runs: exit code 2 and one line."""
        argv = ["leaderboard", "refresh", "--runs", str(tmp_path), "--out", str(tmp_path / "o")]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no completed runs" in err[0]

    def test_nightly(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """leaderboard nightly runs the specs and says what it did; each run it evaluates is a
        'results: URL  (N s: phases)' line on stderr (as 'run' prints it), none with --quiet."""
        spec = _specs(tmp_path / "specs")[1]
        argv = ["leaderboard", "nightly", "--specs", spec, "--store", str(tmp_path / "s")]
        argv += ["--executor", "local"]
        assert main([*argv, "--quiet"]) == 0
        out, err = capsys.readouterr()
        assert "ran 1, unchanged 0" in out and "results:" not in err
        Path(spec).write_text(SPEC_B + '[[routers]]\nname = "zero"\n')  # new inputs: a new run
        before = set(os.listdir(tmp_path / "s" / "runs"))
        assert main(argv) == 0
        out, err = capsys.readouterr()
        (run_id,) = set(os.listdir(tmp_path / "s" / "runs")) - before
        m = json.loads((tmp_path / "s" / "runs" / run_id / "manifest.json").read_text())
        phases = ("load", "evaluate", "write", "fits")  # in the order a run measures them
        times = ", ".join(f"{k} {m['phases'][k]:.1f} s" for k in phases)
        url = store.join(str(tmp_path / "s" / "runs"), run_id)
        assert f"results: {url}  ({m['seconds']:.1f} s: {times})" in err.splitlines()
        assert "ran 1, unchanged 0" in out
        assert main([*argv, "--quiet"]) == 0
        assert "ran 0, unchanged 1" in capsys.readouterr().out

    def test_page_url(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The page's URL: a file:// URI for a local folder, given as a path (relative or not)
        or as a file:// URL; other URLs as they are."""
        monkeypatch.chdir(tmp_path)
        page = (tmp_path / "lb" / "index.html").as_uri()
        assert lb.page_url(str(tmp_path / "lb")) == page
        assert lb.page_url("lb") == page
        assert lb.page_url(f"file://{tmp_path}/lb/") == page
        assert lb.page_url("s3://bucket/lb") == "s3://bucket/lb/index.html"
