"""The leaderboard's ranking: references apart, rank bands, labels over a board, older runs."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from s3server import time_limit

from routerbench.cluster.cli import main
from routerbench.cluster.leaderboard import rank as lr
from routerbench.sweeps import runs as run_files
from routerbench.sweeps.labels import kind

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
name = "random"
[[routers]]
name = "knn"
grid = { k = [5, 10] }
"""
# Columns runs written before issue 14 lack.
NEWER = [
    "kind", "label", "trial", "aiq_frontier", "gap_closed", "gap_closed_lo", "gap_closed_hi",
    "aiq_reps", "max_quality_reps",
]  # fmt: skip
B = 40  # replicates of the crafted curves
# The crafted routers' AIQ: every step significant within a family; overall (the families'
# mean) knn k=5 and k=10 differ by 0.0001, not significantly.
AIQ = {
    ("hellaswag", "knn5"): 0.80, ("hellaswag", "knn10"): 0.70, ("hellaswag", "random"): 0.40,
    ("mmlu", "knn5"): 0.6002, ("mmlu", "knn10"): 0.70, ("mmlu", "random"): 0.40,
}  # fmt: skip


@pytest.fixture(autouse=True)
def _limit() -> Iterator[None]:
    with time_limit(240):
        yield


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completed run: single models, oracle, random, two knn, zero and frontier."""
    root = tmp_path_factory.mktemp("rank")
    (root / "spec.toml").write_text(SPEC)
    argv = ["run", str(root / "spec.toml"), "--out", str(root / "runs"), "--run-id", "run0"]
    assert main([*argv, "--quiet", "--no-plots"]) == 0
    return root / "runs"


@pytest.fixture(scope="module")
def curves(runs: Path) -> pd.DataFrame:
    return lr.collect(str(runs)).curves


@pytest.fixture(scope="module")
def table(curves: pd.DataFrame) -> pd.DataFrame:
    return lr.rank(curves)


def crafted(curves: pd.DataFrame) -> pd.DataFrame:
    """The curves with the routers' AIQ set per family (:data:`AIQ`) and B replicates per row:
    its AIQ plus noise (sd 0.005); one replicate NaN."""
    rng = np.random.default_rng(7)
    k = ["5" if json.loads(p).get("k") == 5 else "10" for p in curves["params"]]
    name = [r + kk if r == "knn" else r for r, kk in zip(curves["router"], k, strict=True)]
    aiq = [
        AIQ.get((f, n), a) for f, n, a in zip(curves["family"], name, curves["aiq"], strict=True)
    ]
    reps = [a + rng.normal(0.0, 0.005, B) for a in aiq]
    reps[name.index("knn5")][3] = np.nan
    return curves.assign(aiq=aiq, aiq_reps=reps)


def direct_bands(reps: list[np.ndarray]) -> list[int]:
    """Bands written out: a new band where the 2.5% quantile of the paired differences to the
    row above (finite replicates) is above 0."""
    out = [1]
    for a, b in itertools.pairwise(reps):
        d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
        d = d[np.isfinite(d)]
        out.append(out[-1] + int(len(d) >= 2 and np.quantile(d, 0.025) > 0))
    return out


def routers_of(table: pd.DataFrame, scope: str) -> pd.DataFrame:
    return table[(table["scope"] == scope) & (table["kind"] == "router")]


def rewrite_curves(run_dir: Path, curves: pd.DataFrame) -> None:
    """Replace a run's curves table, keeping the run consistent (metadata and sha256)."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    data = run_files.table_bytes(curves, manifest)
    (run_dir / "curves.parquet").write_bytes(data)
    manifest["tables"]["curves.parquet"] = run_files.sha256(data)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


class TestReferences:
    def test_references_not_ranked(self, table: pd.DataFrame) -> None:
        """Single models, oracle, zero and frontier have no rank and no band; routers have both."""
        refs = table["router_name"].isin(["single", "oracle", "zero", "frontier"])
        assert (table["kind"] == np.where(refs, "reference", "router")).all()
        assert table.loc[refs, ["rank", "band"]].isna().all().all()
        assert table.loc[~refs, ["rank", "band"]].notna().all().all()

    def test_routers_ranked_among_themselves(self, table: pd.DataFrame) -> None:
        """Per scope the routers are ranked 1..n by AIQ, even where a reference has more."""
        for scope in ("overall", "hellaswag", "mmlu"):
            g = routers_of(table, scope)
            assert sorted(g["router_name"]) == ["knn", "knn", "random"]
            assert g["rank"].tolist() == [1, 2, 3]
            assert (np.diff(g["aiq"].to_numpy()) <= 0).all()
            oracle = table[(table["scope"] == scope) & (table["router_name"] == "oracle")]
            assert oracle["aiq"].iloc[0] > g["aiq"].iloc[0]  # would have ranked first

    def test_references_after_routers_frontier_first(self, table: pd.DataFrame) -> None:
        """In each scope the routers come first, then the references, the frontier first."""
        for _, g in table.groupby(["data_fingerprint", "split", "scope"]):
            kinds = g["kind"].tolist()
            assert kinds == sorted(kinds, key=lambda k: k == "reference")
            assert g[g["kind"] == "reference"]["router_name"].iloc[0] == "frontier"

    def test_overall_gap_from_overall_aiq_ceiling_mean(
        self, table: pd.DataFrame, curves: pd.DataFrame
    ) -> None:
        """Overall: the ceiling is the families' mean; the gap is the ratio of the overall
        AIQs, its interval that ratio per replicate of the means over families."""
        fam = table[table["scope"] != "overall"]
        over = table[table["scope"] == "overall"].set_index("router")
        z, f = over.loc["zero", "aiq"], over.loc["frontier", "aiq"]
        cv = lr.complete(curves)

        def mean_reps(name: str, params: str) -> np.ndarray:
            rows = cv[(cv["router"] == name) & (cv["params"] == params)]
            return np.mean(np.stack(rows["aiq_reps"].to_list()), axis=0)

        zr, fr = (mean_reps(n, over.loc[n, "params"]) for n in ("zero", "frontier"))
        for label, r in over.iterrows():
            g = fam[(fam["router_name"] == r["router_name"]) & (fam["params"] == r["params"])]
            assert r["aiq_frontier"] == pytest.approx(g["aiq_frontier"].mean())
            assert r["gap_closed"] == pytest.approx((r["aiq"] - z) / (f - z)), label
            per = (mean_reps(r["router_name"], r["params"]) - zr) / (fr - zr)
            lo, hi = np.quantile(per[np.isfinite(per)], [0.025, 0.975])
            assert (r["gap_closed_lo"], r["gap_closed_hi"]) == pytest.approx((lo, hi), abs=1e-12)
        front = table[table["router_name"] == "frontier"]
        assert np.allclose(front["gap_closed"], 1.0) and np.allclose(
            front["aiq"], front["aiq_frontier"]
        )


class TestBands:
    def test_bands_equal_a_direct_computation(self, curves: pd.DataFrame) -> None:
        """Per family and overall (per replicate the mean over families), the bands are those of
        the 2.5% quantile of consecutive paired differences (both kinds of step occur)."""
        cv = crafted(curves)
        table = lr.rank(cv)
        seen = {}
        for scope in ("overall", "hellaswag", "mmlu"):
            g = routers_of(table, scope)
            reps = []
            for _, r in g.iterrows():
                rows = cv[(cv["router"] == r["router_name"]) & (cv["params"] == r["params"])]
                if scope != "overall":
                    rows = rows[rows["family"] == scope]
                reps.append(np.mean(np.stack(rows["aiq_reps"].to_list()), axis=0))
            assert g["band"].tolist() == direct_bands(reps)
            seen[scope] = g["band"].tolist()
        assert seen == {"overall": [1, 1, 2], "hellaswag": [1, 2, 3], "mmlu": [1, 2, 3]}

    def test_overall_aiq_interval_from_mean_replicates(self, curves: pd.DataFrame) -> None:
        """Overall AIQ's interval: percentiles of the per-replicate means over families."""
        cv = crafted(curves)
        table = lr.rank(cv)
        for _, r in routers_of(table, "overall").iterrows():
            rows = cv[(cv["router"] == r["router_name"]) & (cv["params"] == r["params"])]
            mean = np.mean(np.stack(rows["aiq_reps"].to_list()), axis=0)
            lo, hi = np.quantile(mean[np.isfinite(mean)], [0.025, 0.975])
            assert (r["aiq_lo"], r["aiq_hi"]) == pytest.approx((lo, hi), abs=1e-12)

    def test_other_bootstrap_settings_are_not_significant(self, curves: pd.DataFrame) -> None:
        """A router from a run with other bootstrap settings stays in the band of the one above."""
        cv = crafted(curves)
        other = cv["router"] == "random"
        ranked = lr.rank(cv)
        table = lr.rank(cv.assign(bootstrap_key=np.where(other, "other", cv["bootstrap_key"])))
        for scope in ("overall", "hellaswag", "mmlu"):
            g, before = routers_of(table, scope), routers_of(ranked, scope)
            assert g["router_name"].iloc[-1] == "random"
            assert before["band"].iloc[-1] == before["band"].iloc[-2] + 1  # significant alone
            assert g["band"].iloc[-1] == g["band"].iloc[-2]

    def test_replicates_of_other_lengths_are_not_significant(self, curves: pd.DataFrame) -> None:
        """Replicate lists of different lengths, or none, never start a band."""
        cv = crafted(curves)
        short = [
            r[:-1] if k == "random" else r
            for r, k in zip(cv["aiq_reps"], cv["router"], strict=True)
        ]
        none = lr.rank(cv.assign(aiq_reps=[[] for _ in range(len(cv))]))
        assert none["band"].isna().all()  # no replicates anywhere: no bands, not one big tie
        for reps in (short,):
            table = lr.rank(cv.assign(aiq_reps=reps))
            for scope in ("overall", "hellaswag", "mmlu"):
                g = routers_of(table, scope)
                assert g["band"].iloc[-1] == g["band"].iloc[-2]

    def test_stitching(self) -> None:
        """bands(): rank_bands within each run of equal keys, continued across a change."""
        far = [[1.0, 1.1, 0.9], [0.5, 0.6, 0.4], [0.0, 0.1, -0.1], [-0.5, -0.4, -0.6]]
        values = [1.0, 0.5, 0.0, -0.5]
        assert lr.bands(values, far, ["a"] * 4) == [1, 2, 3, 4]
        assert lr.bands(values, far, ["a", "a", "b", "b"]) == [1, 2, 2, 3]


class TestLabels:
    def test_unique_on_each_board(self, table: pd.DataFrame) -> None:
        """No two rows of a scope share a label."""
        assert not table.duplicated(["data_fingerprint", "split", "scope", "router"]).any()
        assert {"knn(k=5)", "knn(k=10)", "oracle", "frontier"} <= set(table["router"])

    def test_trials_of_different_runs(self, curves: pd.DataFrame) -> None:
        """Trial 17 of two runs with other parameters: each label gets its run id's last six
        characters, or the whole id where those are the same (ids of one spec share a prefix);
        a trial of its own keeps the plain label."""
        knn = curves["router"] == "knn"
        k5 = curves["params"].str.contains('"k":5')
        cv = curves.assign(
            trial=np.where(knn, 17, curves["trial"]),
            run_id=np.where(knn & k5, "Xaaaaaa", np.where(knn, "Ybbbbbb", curves["run_id"])),
        )
        labels = set(lr.rank(cv)["router"])
        assert {"knn#17@aaaaaa", "knn#17@bbbbbb"} <= labels and "knn#17" not in labels
        same_end = cv.assign(run_id=np.where(knn & k5, "a047e6-0001", cv["run_id"]))
        same_end = same_end.assign(run_id=np.where(knn & ~k5, "b047e6-0001", same_end["run_id"]))
        labels = set(lr.rank(same_end)["router"])
        assert {"knn#17@a047e6-0001", "knn#17@b047e6-0001"} <= labels
        cv = cv.assign(trial=np.where(knn & k5, 3, cv["trial"]))
        assert {"knn#3", "knn#17"} <= set(lr.rank(cv)["router"])


class TestOlderRuns:
    def test_run_without_the_new_columns(self, runs: Path, table: pd.DataFrame, tmp_path: Path):
        """A run whose curves lack kind, label, trial, gaps and replicates (and its spec) is
        collected and ranked: kind from the router, the same labels, family gaps NaN, no bands."""
        old = tmp_path / "runs" / "old"
        shutil.copytree(runs / "run0", old)
        (old / "spec.toml").unlink()
        rewrite_curves(old, pd.read_parquet(old / "curves.parquet").drop(columns=NEWER))
        got = lr.rank(lr.collect(str(tmp_path / "runs")).curves)
        assert got["kind"].tolist() == [kind(r) for r in got["router_name"]]
        assert sorted(got["router"]) == sorted(table["router"])
        fams = got[got["scope"] != "overall"]
        assert fams[["gap_closed", "gap_closed_lo", "aiq_frontier"]].isna().all().all()
        assert got["gap_closed_lo"].isna().all()  # no replicates: no gap interval anywhere
        routers = got[got["kind"] == "router"]
        assert routers["band"].isna().all() and routers["rank"].notna().all()  # no bands
        pd.testing.assert_series_equal(got["aiq"], table["aiq"])

    def test_bootstrap_key(self) -> None:
        """Settings from the spec (defaults where absent); a run's own key without a spec."""
        assert lr.bootstrap_key(b"[metrics]\nbootstrap = 20\n", "r") == "bootstrap=20, seed=0"
        assert lr.bootstrap_key(b"[search]\nseed = 3\n", "r") == "bootstrap=200, seed=3"
        assert lr.bootstrap_key(None, "r") == lr.bootstrap_key(b"[[[", "r") == "run r"
