"""Bootstrap intervals on small families (issue 10, section 4): at 1, 2, 4 and 30 test prompts,
replicates without weight are left out and counted, intervals stay in range, small families are
flagged in tables, report, plots and the leaderboard page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.cluster.cli import main
from routerbench.cluster.leaderboard.page import SHOWN, page
from routerbench.engine import io
from routerbench.engine.bootstrap import poisson_weights, recentre
from routerbench.engine.data import RoutingData
from routerbench.routers.base import create
from routerbench.sweeps.cells import Cell, evaluate_cell
from routerbench.sweeps.plot import plot_family, small_sample_note
from routerbench.sweeps.report import SMALL_NOTE, render
from routerbench.sweeps.run import evaluate
from routerbench.sweeps.split import Split
from routerbench.sweeps.summary import Results, single_model_ranges, summarize

SIZES = [1, 2, 4, 30]
B = 200
SEED = 3
TRAIN = 40


def family(
    n_test: int, seed: int = 0, name: str = "mtbench", n_train: int = TRAIN
) -> tuple[RoutingData, np.ndarray]:
    """One family of ``n_train + n_test`` prompts, 3 models (cheap and weak to dear and strong),
    features that predict quality; and the train mask (the last ``n_test`` prompts are test)."""
    n = n_train + n_test
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    q = (x[:, :3] + rng.normal(size=(n, 3)) + [-2.0, 0.0, 1.5] > 0).astype(float)
    c = np.array([1e-4, 1e-3, 1e-2]) * rng.uniform(0.5, 1.5, (n, 3))
    data = RoutingData(
        quality=q,
        cost=c,
        models=["a", "b", "c"],
        prompt_ids=[f"{name}-{i}" for i in range(n)],
        eval_names=[name] * n,
        features=x,
    )
    return data, np.arange(n) < n_train


def routers() -> list:
    """Routers with and without an exact path, one and many knob values."""
    return [create("single", model="a"), create("oracle"), create("knn", k=3), create("random")]


def empty_replicates(data: RoutingData, mask: np.ndarray, bootstrap: int = B) -> np.ndarray:
    """Which replicates give every test prompt weight 0, from the weights themselves."""
    w = poisson_weights(SEED, data.keys()[~mask], bootstrap)
    return w.sum(axis=1) == 0


@pytest.fixture(scope="module", params=SIZES)
def run(request: pytest.FixtureRequest) -> tuple[int, RoutingData, np.ndarray, Results]:
    """Four routers evaluated with B replicates on a family of n test prompts."""
    n = request.param
    data, mask = family(n)
    return n, data, mask, evaluate(data, routers(), train_mask=mask, bootstrap=B, seed=SEED)


def custom_split(data: RoutingData, mask: np.ndarray) -> Split:
    rows = np.arange(data.n_prompts)
    return Split("custom", SEED, train={"mtbench": rows[mask]}, test={"mtbench": rows[~mask]})


class TestReduceStats:
    @pytest.mark.parametrize("n", SIZES)
    def test_empty_replicates_are_not_scored(self, n: int) -> None:
        """A replicate without weight is NaN (never cost 0 / quality 0); the others are the
        weighted means, computed here from the weights and the model's outcomes."""
        data, mask = family(n)
        split = custom_split(data, mask)
        res = evaluate_cell(
            data, Cell(0, "single", {"model": "a"}, "custom"), split, bootstrap=B, seed=SEED
        )
        bc, bq = res.boot["mtbench"]
        w = poisson_weights(SEED, data.keys()[~mask], B)
        empty = w.sum(axis=1) == 0
        assert empty.any() == (n <= 4)  # B = 200: ~74, ~27, ~4 and ~0 expected
        assert np.isnan(bc[:, 0]).tolist() == empty.tolist()
        assert np.isnan(bq[:, 0]).tolist() == empty.tolist()
        with np.errstate(invalid="ignore"):
            cost = w @ data.cost[~mask, 0] / w.sum(axis=1)
            quality = w @ data.quality[~mask, 0] / w.sum(axis=1)
        np.testing.assert_allclose(bc[~empty, 0], cost[~empty], rtol=1e-12)
        np.testing.assert_allclose(bq[~empty, 0], quality[~empty], rtol=1e-12, atol=1e-15)


class TestSummarize:
    def test_excluded_count(self, run) -> None:
        """boot_excluded is the number of replicates whose weights are all zero."""
        n, data, mask, res = run
        expected = int(empty_replicates(data, mask).sum())
        assert (res.curves["boot_excluded"] == expected).all()
        assert (expected > 0) == (n < 30)

    def test_flags(self, run) -> None:
        """n_test is the family's test prompts; small_sample below 30; no interval below 2."""
        n, _, _, res = run
        c, p = res.curves, res.points
        assert (c["n_test"] == n).all() and (c["small_sample"] == (n < 30)).all()
        cols = ["aiq_lo", "aiq_hi", "max_quality_lo", "max_quality_hi"]
        pcols = ["quality_lo", "quality_hi", "cost_lo", "cost_hi"]
        if n < 2:
            assert c[cols].isna().all().all() and p[pcols].isna().all().all()
        else:
            assert c[cols].notna().all().all() and p[pcols].notna().all().all()

    def test_intervals_in_range(self, run) -> None:
        """Quality, max quality and AIQ intervals lie in [0, 1], cost ones at or above 0, and
        the low end is at most the high end."""
        _, _, _, res = run
        c, p = res.curves, res.points
        for lo, hi in [("aiq_lo", "aiq_hi"), ("max_quality_lo", "max_quality_hi")]:
            x, y = c[lo].dropna(), c[hi].dropna()
            assert (x >= 0).all() and (y <= 1).all() and (x <= y).all()
        x, y = p["quality_lo"].dropna(), p["quality_hi"].dropna()
        assert (x >= 0).all() and (y <= 1).all() and (x <= y).all()
        assert (p["cost_lo"].dropna() >= 0).all()
        assert (p["cost_lo"].dropna() <= p["cost_hi"].dropna()).all()

    def test_no_zero_cost_replicate(self, run) -> None:
        """Every prompt costs more than 0, so no replicate does: the cost intervals' low ends
        are positive (scoring an empty replicate as 0 put them at exactly 0)."""
        n, _, _, res = run
        assert n < 2 or (res.points["cost_lo"] > 0).all()

    def test_mean_intervals_contain_estimates(self, run) -> None:
        """The single model's interval holds its mean quality and cost (they are replicates'
        weighted means of the same values)."""
        n, _, _, res = run
        p = res.points[res.points["router"] == "single"].iloc[0]
        assert n < 2 or p["quality_lo"] <= p["quality_mean"] <= p["quality_hi"]
        assert n < 2 or p["cost_lo"] <= p["cost_mean"] <= p["cost_hi"]

    @pytest.mark.parametrize("n", [2, 4, 30])
    def test_exact_path_intervals_in_range(self, n: int) -> None:
        """A router whose exact path reaches far above its one grid point (knob 1e-10: the
        cheapest model): its re-centred max-quality and AIQ intervals stay in [0, 1] and hold
        the exact estimates (adding the exact-minus-grid shift went past 1)."""
        data, mask = family(n)
        split = custom_split(data, mask)
        cell = Cell(0, "knn", {"k": 3}, "custom", knobs=(1e-10,))
        res = evaluate_cell(data, cell, split, bootstrap=B, seed=SEED)
        (row,) = summarize([res], single_model_ranges(data, [split])).curves.to_dict("records")
        point = res.rows[0]["quality_mean"]
        assert row["max_quality"] - point >= 0.2  # the path goes far beyond the grid
        assert 0 <= row["max_quality_lo"] <= row["max_quality"] <= row["max_quality_hi"] <= 1
        assert 0 <= row["aiq_lo"] and row["aiq_hi"] <= 1


class TestRecentre:
    @settings(max_examples=200)
    @given(
        v=st.lists(st.floats(0, 1), min_size=2, max_size=2).map(sorted),
        old=st.floats(0, 1),
        new=st.floats(0, 1),
    )
    def test_in_range_monotone_and_containing(self, v: list[float], old: float, new: float):
        """Ends stay in [0, 1] and in order; ``old`` goes to ``new``; an interval holding
        ``old`` holds ``new``."""
        lo, hi = recentre(np.array(v), old, new)
        assert 0 <= lo <= hi <= 1
        assert recentre(np.array([old]), old, new)[0] == new
        if v[0] <= old <= v[1]:
            assert lo <= new <= hi

    def test_identity_without_shift(self) -> None:
        """Equal estimates leave the interval exactly as it was."""
        v = np.array([0.1234567, 0.987654321])
        assert recentre(v, 0.3, 0.3).tolist() == v.tolist()


def stack(parts: list[RoutingData]) -> RoutingData:
    """The prompts of several data sets (same models) in one."""
    return RoutingData(
        quality=np.concatenate([d.quality for d in parts]),
        cost=np.concatenate([d.cost for d in parts]),
        models=parts[0].models,
        prompt_ids=[p for d in parts for p in d.prompt_ids],
        eval_names=[e for d in parts for e in d.eval_names],
        features=np.concatenate([d.features for d in parts]),
    )


@pytest.fixture(scope="module")
def tiny() -> Results:
    """bootstrap = 10 on families of 1, 2 and 4 test prompts (mtbench1, mtbench2, mtbench4)."""
    parts = [family(n, seed=n, name=f"mtbench{n}") for n in (1, 2, 4)]
    mask = np.concatenate([m for _, m in parts])
    data = stack([d for d, _ in parts])
    return evaluate(data, routers(), train_mask=mask, families=["all"], bootstrap=10, seed=SEED)


class TestPlotFamily:
    @pytest.mark.parametrize("fam", ["mtbench1", "mtbench2", "mtbench4"])
    def test_tiny_families_with_ten_replicates(self, tiny: Results, fam: str) -> None:
        """bootstrap = 10 on families of 1, 2 and 4 test prompts: a PNG for each."""
        res = tiny
        png = plot_family(res.points, res.curves, fam)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"

    def test_interval_not_holding_the_estimate(self, tiny: Results) -> None:
        """A point whose interval lies above it draws (errorbar refused a negative length)."""
        res = tiny
        pts = res.points.copy()
        pts["quality_lo"] = pts["quality_mean"] + 0.1
        pts["quality_hi"] = pts["quality_mean"] + 0.2
        assert plot_family(pts, res.curves, "mtbench4")[:4] == b"\x89PNG"

    def test_flag_changes_the_plot(self, tiny: Results) -> None:
        """The small-sample note is drawn: the PNG differs with the flag off."""
        res = tiny
        off = res.curves.assign(small_sample=False)
        assert plot_family(res.points, res.curves, "mtbench4") != plot_family(
            res.points, off, "mtbench4"
        )


class TestSmallSampleNote:
    def test_notes(self, tiny: Results) -> None:
        """'n = 4 test prompts: intervals unreliable'; 'no intervals' below 2; nothing at 30."""
        c = tiny.curves
        assert small_sample_note(c[c["family"] == "mtbench4"]).endswith(
            "n = 4 test prompts: intervals unreliable"
        )
        assert small_sample_note(c[c["family"] == "mtbench1"]).endswith(
            "n = 1 test prompt: no intervals"
        )
        assert small_sample_note(c.assign(small_sample=False)) == ""


class TestRender:
    def test_formats_show_the_flag(self, tiny: Results) -> None:
        """Table and Markdown mark small families and explain the mark; JSON carries the
        columns."""
        c = tiny.curves
        table = render(c, "table")
        assert SMALL_NOTE in table and "4*" in table and "1*" in table
        md = render(c, "markdown")
        assert "| 4\\* |" in md and SMALL_NOTE.replace("*", "\\*", 1) in md
        recs = json.loads(render(c, "json"))["rows"]
        assert {(r["family"], r["n_test"], r["small_sample"]) for r in recs} == {
            ("mtbench1", 1, True),
            ("mtbench2", 2, True),
            ("mtbench4", 4, True),
        }
        assert all(r["aiq_lo"] is None for r in recs if r["n_test"] == 1)

    def test_no_flag_at_30(self) -> None:
        """A family of 30 test prompts is not marked."""
        data, mask = family(30)
        c = evaluate(data, routers(), train_mask=mask, bootstrap=20, seed=SEED).curves
        assert SMALL_NOTE not in render(c, "table") and "*" not in render(c, "markdown")


class TestPage:
    def table(self, small: list[bool]) -> pd.DataFrame:
        """A leaderboard table with the page's columns, one row per flag."""
        rows = []
        for i, s in enumerate(small):
            row = {col: 0.5 for col, _, _ in SHOWN}
            row |= {"scope": "mtbench", "rank": i + 1, "router": f"r{i}", "split": "upstream"}
            row |= {"data_fingerprint": "f" * 64, "run_id": "r", "best_single": "a"}
            row |= {"aiq_hi": 0.6, "max_quality_hi": 0.7, "n_test": 4 if s else 300}
            rows.append(row | {"small_sample": s, "synthetic": False})
        return pd.DataFrame(rows)

    def html(self, table: pd.DataFrame) -> str:
        prov = {"generated": "now", "generator": {"routerbench": "0"}, "runs": []}
        return page(table, [], prov, {})

    def test_small_rows_marked(self) -> None:
        """A small family's intervals and test-prompt count carry the mark and the note."""
        html = self.html(self.table([True, False]))
        assert 'id="small"' in html and "fewer than 30 test prompts" in html
        assert html.count("[0.5000, 0.6000] *") == 1 and ">4 *<" in html and ">300<" in html

    def test_unflagged_page_has_no_note(self) -> None:
        """Without a small family, and without the column at all, no mark."""
        for t in (self.table([False]), self.table([False]).drop(columns="small_sample")):
            assert 'id="small"' not in self.html(t) and " *<" not in self.html(t)


class TestCliRun:
    def test_run_plots_and_reports_tiny_families(self, tmp_path: Path, capsys) -> None:
        """A run with bootstrap = 10 on families of 1, 2 and 4 test prompts writes its plots
        and manifest; report shows the flag."""
        # upstream split: 3, 6 and 13 prompts leave 1, 2 and 4 for test
        data = stack([family(m, seed=m, name=f"tiny{m}", n_train=0)[0] for m in (3, 6, 13)])
        url = str(tmp_path / "d.parquet")
        io.save(data, url)
        spec = tmp_path / "s.toml"
        spec.write_text(
            '[data]\nfamilies = ["all"]\n[[routers]]\nname = "oracle"\n[[routers]]\n'
            'name = "random"\n[[routers]]\nname = "knn"\ngrid = { k = [1] }\n'
            "[metrics]\nbootstrap = 10\n"
        )
        argv = ["run", str(spec), "--data", url, "--out", str(tmp_path), "--run-id", "r"]
        assert main([*argv, "--quiet"]) == 0
        out = tmp_path / "r"
        assert (out / "manifest.json").exists()
        pngs = sorted((out / "plots").glob("*.png"))
        assert len(pngs) == 3 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
        curves = pd.read_parquet(out / "curves.parquet")
        assert sorted(set(curves["n_test"])) == [1, 2, 4] and curves["small_sample"].all()
        capsys.readouterr()
        assert main(["report", str(out)]) == 0
        assert SMALL_NOTE in capsys.readouterr().out
